"""The embedded ``local`` CRM: contacts and call activities in the project's own database. It has
no settings of its own (the ledger's ``DATABASE_URL`` holds its tables)."""

from __future__ import annotations

from dataclasses import dataclass

from integration.crm.base import BrowsesContacts, CrmAdapter, CrmPlugin, CrmSettingsSchema, Resources
from integration.crm.local.adapter import LocalCrm


@dataclass(frozen=True)
class LocalSettings:
    pass


class LocalSettingsSchema(CrmSettingsSchema):
    backend = "local"
    settings_class = LocalSettings


def build(resources: Resources) -> CrmAdapter:
    return LocalCrm(resources.engine, account=resources.account)


PLUGIN = CrmPlugin(
    name="local",
    label="the embedded CRM (contacts and activities in DATABASE_URL)",
    settings_schema=LocalSettingsSchema,
    build=build,
    capabilities=(BrowsesContacts,),
)
