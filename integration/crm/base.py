"""The CRM plugin interface: the adapter every CRM implements, its optional capabilities, the
plugin object each CRM package exposes (``PLUGIN``), and the adapters' errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from marshmallow import ValidationError, post_load, validates_schema
from redis import Redis

from integration.config import ConcernSchema, Settings
from integration.errors import ConfigError, IntegrationError
from integration.ledger.deliveries import DELIVERED, PENDING, DeliveryLedger
from integration.models import Activity, Contact
from integration.phone import Phone
from integration.secretbox import SecretBox

if TYPE_CHECKING:
    from sqlalchemy import Engine  # annotations only: the ledger builds the engine

T = TypeVar("T")


class CrmError(IntegrationError):
    """The CRM did not take the request; ``retryable`` when trying again later may help (each
    adapter decides from the CRM's answer)."""

    retryable = True

    def __init__(self, message: str, *, retryable: bool = True):
        self.retryable = retryable
        super().__init__(message)


class CrmRateLimited(CrmError):
    """The CRM asked us to slow down (amoCRM's 429, Bitrix24's ``QUERY_LIMIT_EXCEEDED``): the
    adapter backs off and repeats the request itself a few times, then the work is retried later."""


def rate_limited(exc: BaseException) -> bool:
    """Whether a CRM request's failure is repeated in place (``integration.retrying``'s ``when``)."""
    return isinstance(exc, CrmRateLimited)


class CrmAdapter(Protocol):
    """What every CRM does. Optional abilities are the capability interfaces below: callers ask
    ``isinstance(crm, Capability)``, never which CRM it is."""

    name: str

    def find_contacts(self, phone: Phone) -> list[Contact]:
        """Contacts whose number is ``phone`` (by E.164, or the last 10 digits when formats differ)."""
        ...

    def create_contact(self, phone: Phone, name: str = "") -> Contact:
        """A new contact for an unknown number."""
        ...

    def write_activity(self, activity: Activity) -> str:
        """Write the call; return the CRM's id for it. Writing the same call again returns the
        same id and changes nothing (the adapter is idempotent on ``activity.call_id``)."""
        ...

    def attach_calls(self, deal_id: str, call_ids: list[str], reference: str) -> None:
        """Attach calls to a deal (the ``attach_calls`` rule action); idempotent per ``reference``
        (the event and rule that asked for it)."""
        ...


@runtime_checkable
class TakesEvents(Protocol):
    """Takes events beside calls (``callback.finished``, ``recording.ready``) from the outbox."""

    name: str

    def send(self, event_type: str, subject: str, data: dict) -> str:
        """Deliver one event; the same event again changes nothing. Returns the CRM's answer id."""
        ...


@runtime_checkable
class CreatesLeads(Protocol):
    """Creates a lead for an unknown number as it writes the call (``MATCH_UNKNOWN=create_lead``);
    a CRM without this gets a contact instead."""

    creates_leads: bool


@runtime_checkable
class KnowsDeals(Protocol):
    """Reads a deal's numbers and responsible user (its events name the deal only)."""

    def deal_context(self, deal_id: str) -> dict:
        """``{"phones": [...], "responsible_user": …}`` of the deal."""
        ...


@runtime_checkable
class StoresSecrets(Protocol):
    """Keeps secrets of its own in Redis (OAuth tokens), sealed with ``SECRET_KEYS``."""

    def reseal_secrets(self) -> int:
        """Seal them again with the first key (``secrets rotate``); returns how many."""
        ...


@runtime_checkable
class BrowsesContacts(Protocol):
    """Keeps its own contacts and activities (the embedded CRM): lists them for ``/api/contacts``
    and ``/api/activities``, and takes contacts from a file (``contacts import``)."""

    def contacts_page(self, limit: int, offset: int, phone: Phone | None = None) -> list[dict]: ...

    def import_contacts(self, rows: list[dict[str, str]], region: str) -> tuple[int, list[str]]:
        """Add contacts from CSV rows (``name``, ``phone``); returns (added, one error line per bad row)."""
        ...

    def activities_page(self, limit: int, offset: int, contact_id: str | None = None) -> list[dict]: ...


def external_e164(phone: Phone) -> str:
    """The E.164 number of a contact to create: short internal numbers never get one."""
    if phone.e164 is None:
        raise CrmError(f"{phone.raw} is an internal number: no CRM contact is made for it", retryable=False)
    return phone.e164


def logged_crm_id(deliveries: DeliveryLedger, call_id: str, crm: str) -> str | None:
    """The CRM's id of a delivered call, or None when the call was never logged there; while the
    call's own delivery is still pending, a retryable ``CrmError`` (the caller tries again later)."""
    delivery = deliveries.get(call_id, crm)
    if delivery is None or delivery.status == PENDING:
        raise CrmError(f"call {call_id} is not in {crm} yet")
    return delivery.crm_id if delivery.status == DELIVERED and delivery.crm_id else None


class Resources(Protocol):
    """What a plugin's builder may use of the process's resources (``Runtime`` provides them)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def account(self) -> str: ...
    def key(self, name: str) -> str: ...
    @property
    def redis(self) -> Redis: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def delivery_ledger(self) -> DeliveryLedger: ...
    @property
    def secret_box(self) -> SecretBox: ...


class CrmSettingsSchema(ConcernSchema):
    """A CRM plugin's settings (per account): loads into ``settings_class``. Its required names
    are required only when the CRM is the backend: another CRM's settings are loaded with
    ``partial=True`` (checked when set, never required) and ``check`` is skipped."""

    backend: ClassVar[str]
    settings_class: ClassVar[type]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        for field in self.fields.values():
            field.error_messages["required"] = f"is required when CRM_BACKEND is {self.backend}"

    @validates_schema(skip_on_field_errors=False)
    def _check_as_backend(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not kwargs.get("partial"):
            problems = self.check(data)
            if problems:
                raise ValidationError(problems)

    def check(self, data: Mapping[str, Any]) -> list[str]:
        """Problems across this CRM's own names when it is the backend (one line each)."""
        return []

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        needed = {
            f.name
            for f in dataclass_fields(self.settings_class)
            if f.default is MISSING and f.default_factory is MISSING
        }
        missing = [field.data_key or name for name, field in self.fields.items() if name in needed and name not in data]
        if missing:  # another CRM's settings, partly set and unusable so: surely a mistake
            given = ", ".join(self.fields[name].data_key or name for name in data)
            raise ValidationError({name: [f"is required when {given} is set"] for name in missing})
        return self.settings_class(**data)


@dataclass(frozen=True)
class CrmPlugin:
    """What a CRM package exposes as ``PLUGIN``; ``crm/registry.py`` lists one line per plugin.

    - ``settings_schema``: its settings (``CrmSettingsSchema``), loaded beside the core concerns;
    - ``build``: the adapter, from the process's ``Resources`` (its settings are in
      ``resources.settings.crm_settings[name]``);
    - ``capabilities``: the capability interfaces below that its adapter implements (a test holds
      the built adapter to them; callers ask ``isinstance(crm, Capability)``);
    - ``blueprints``: its Flask blueprints as ``"module:attribute"`` import paths (they live in
      ``integration.web``, the only package beside the CLI that imports Flask; ``create_app``
      registers them);
    - ``check``: problems of the core settings (``Settings`` attribute → value) that this backend
      cannot work with, one line each.
    """

    name: str
    label: str
    settings_schema: type[CrmSettingsSchema]
    build: Callable[[Resources], CrmAdapter]
    capabilities: tuple[type, ...] = ()
    blueprints: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], list[str]] | None = None


def crm_settings(settings: Settings, name: str, kind: type[T]) -> T | None:
    """The settings of the CRM plugin ``name`` if they were loaded (it is the backend, or one of
    its names is set), else None."""
    value = settings.crm_settings.get(name)
    return value if isinstance(value, kind) else None


def backend_settings(resources: Resources, name: str, kind: type[T]) -> T:
    """The settings of the backend being built (the loader always loads the backend's)."""
    value = crm_settings(resources.settings, name, kind)
    if value is None:
        raise ConfigError([f"the settings of CRM_BACKEND {name} were not loaded"])
    return value
