"""Reconciliation: pull the orders a storefront's webhook did not deliver."""
