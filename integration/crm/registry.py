"""The CRM plugins, one line each, by ``CRM_BACKEND`` name. Nothing outside this module names a
backend or asks which CRM it has: callers use ``CrmAdapter`` and the capability interfaces of
``base``; the settings loader takes each plugin's schema from here, ``create_app`` its blueprints.

Adding a CRM: its package ``integration/crm/<name>/`` exposing ``PLUGIN`` (see ``base.CrmPlugin``)
and one line below.
"""

from __future__ import annotations

from integration.crm import amocrm, bitrix24, local, webhook
from integration.crm.base import CrmAdapter, CrmPlugin, Resources

DEFAULT = "local"


def _registry(*plugins: CrmPlugin) -> dict[str, CrmPlugin]:
    """The plugins by name; refuses a plugin that is not one, or a name given twice."""
    found: dict[str, CrmPlugin] = {}
    for plugin in plugins:
        if not isinstance(plugin, CrmPlugin) or not callable(plugin.build):
            raise TypeError(f"{plugin!r} is not a CrmPlugin")
        if plugin.name in found or plugin.settings_schema.backend != plugin.name:
            raise ValueError(f"CRM plugin {plugin.name!r} is registered twice or its schema names another")
        found[plugin.name] = plugin
    return found


PLUGINS: dict[str, CrmPlugin] = _registry(
    local.PLUGIN,
    webhook.PLUGIN,
    bitrix24.PLUGIN,
    amocrm.PLUGIN,
)


def build_crm(resources: Resources) -> CrmAdapter:
    """The adapter of ``CRM_BACKEND``."""
    return PLUGINS[resources.settings.crm_backend].build(resources)
