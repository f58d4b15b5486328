"""The generic ``webhook`` CRM: Standard-Webhooks-signed events POSTed to ``CRM_WEBHOOK_URL``."""
