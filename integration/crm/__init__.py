"""The CRMs: one package per CRM exposing ``PLUGIN`` (``base.CrmPlugin``: settings schema, builder,
capabilities, blueprints), listed one line each in ``registry``; chosen by ``CRM_BACKEND``."""
