"""The embedded ``local`` CRM: contacts and call activities in the project's own database."""
