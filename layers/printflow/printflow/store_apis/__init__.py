"""Store APIs: where an order that arrived thin (BigCommerce) is read in full."""
