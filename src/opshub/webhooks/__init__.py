"""Task webhooks as Standard Webhooks: signing secrets and their rotation, the delivery log."""
