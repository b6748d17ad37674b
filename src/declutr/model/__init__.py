"""Model: encoder loading, pooling, losses and the LightningModule."""
