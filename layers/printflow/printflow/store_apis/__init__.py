"""Store APIs: where an order that arrived thin (BigCommerce) is read in full, and where
reconciliation pulls the orders a webhook missed (one module per platform)."""
