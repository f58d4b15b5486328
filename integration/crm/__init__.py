"""CRM adapters behind one small interface (``base.CrmAdapter``), chosen by ``CRM_BACKEND``."""
