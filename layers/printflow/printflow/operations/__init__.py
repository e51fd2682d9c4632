"""What an operator does with orders: find the failed ones, inspect one, retry it.

The ``printflow orders`` and ``printflow dlq`` commands are thin shells over these
functions, so scripts and a future console can call the same operations.
"""
