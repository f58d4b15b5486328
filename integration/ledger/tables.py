"""Table definitions (SQLAlchemy Core). Change them only together with a migration."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

from integration.keys import DEFAULT_ACCOUNT  # every row carries its account
from integration.ledger.db import UTCDateTime

metadata = MetaData()

callback_requests = Table(
    "callback_requests",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", String(32), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("idempotency_key", String(255)),
    Column("phone_from", String(10), nullable=False),
    Column("phone_to", String(20), nullable=False),
    Column("phone_to_raw", String(64), nullable=False, default=""),
    Column("operator_phone_to", String(24), nullable=False),
    Column("crm_user", String(64)),
    Column("crm_context", Text),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("request_hash", String(255)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("placing_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
)
Index("ix_callback_requests_status", callback_requests.c.status, callback_requests.c.placing_at)
Index("ix_callback_requests_created_at", callback_requests.c.created_at)

calls = Table(
    "calls",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", String(64), primary_key=True),
    Column("line", String(10), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("status", String(12), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration", Integer, nullable=False),
    Column("ext_raw", String(64), nullable=False),
    Column("ext_e164", String(20)),
    Column("ext_internal", Boolean, nullable=False),
    Column("service", String(64)),
    Column("record_file_id", String(64)),
    Column("is_read", Integer),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("callback_request_id", String(32)),  # the click-to-call that made this call, if any
    Column("ext_key", String(10)),  # the number's match key (last 10 digits of E.164): looked up by number
)
# With the status, the console's calls-per-hour chart is read from the index alone.
Index("ix_calls_account_started_status", calls.c.account, calls.c.started_at, calls.c.status)
Index("ix_calls_account_ext_key", calls.c.account, calls.c.ext_key, calls.c.started_at)
_LINKED = calls.c.callback_request_id.is_not(None)
Index("ix_calls_callback_request_id", calls.c.callback_request_id, sqlite_where=_LINKED, postgresql_where=_LINKED)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("line", String(10), primary_key=True),
    Column("synced_until", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("call_id", String(64), ForeignKey("calls.id"), primary_key=True),
    Column("crm", String(32), primary_key=True),
    Column("crm_id", String(128)),
    Column("match", String(16)),  # how the number was matched: contact, multiple, created, none, internal, own
    Column("candidates", Text),  # JSON list of the CRM contact ids considered
    Column("created_at", UTCDateTime, nullable=False),
    Column("with_recording", Boolean),  # the delivered activity already carried the recording link
)  # its work state: the work item (deliver_call, call id, CRM)

# The embedded "local" CRM: contacts and the call activities written to them.
contacts = Table(
    "contacts",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, default=""),
    Column("phone_e164", String(20), nullable=False),
    Column("phone_key", String(10), nullable=False),
    Column("phone_raw", String(64), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_contacts_account_phone_key", contacts.c.account, contacts.c.phone_key)

activities = Table(
    "activities",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(64), nullable=False, unique=True),
    Column("contact_ids", Text, nullable=False, default="[]"),
    Column("direction", String(8), nullable=False),
    Column("status", String(12), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration", Integer, nullable=False),
    Column("line", String(10), nullable=False),
    Column("ext_e164", String(20)),
    Column("ext_raw", String(64), nullable=False),
    Column("responsible_user", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("callback_request_id", String(32)),
)
Index("ix_activities_started_at", activities.c.started_at)

# Events to send to the CRM that are not calls (e.g. callback.finished): a transactional outbox.
outbox = Table(
    "outbox",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", String(80), primary_key=True),  # the event's webhook-id
    Column("type", String(40), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)  # its work state: the work item (send_event, event id)

recordings = Table(
    "recordings",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("call_id", String(64), ForeignKey("calls.id"), primary_key=True),
    Column("id", String(32), nullable=False, unique=True),  # public id, in links
    Column("record_file_id", String(64), nullable=False),
    Column("status", String(12)),  # stored, deleted; NULL until stored (the fetch is a work item)
    Column("size", Integer),
    Column("sha256", String(64)),
    Column("storage_key", String(80)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("stored_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
    Column("announced", Boolean, nullable=False, default=False),  # recording.ready is in the outbox
)  # the fetch's work state: the work item (fetch_recording, call id)

crm_events = Table(
    "crm_events",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", String(160), primary_key=True),  # the sender's webhook-id, with its source
    Column("type", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
)  # handling it is a work item (handle_event, event id): what the rules did is its result

deal_calls = Table(  # the local CRM: calls attached to deals by the attach_calls rule action
    "deal_calls",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("deal_id", String(64), primary_key=True),
    Column("call_id", String(64), ForeignKey("calls.id"), primary_key=True),
    Column("attached_at", UTCDateTime, nullable=False),
)

# Everything the workers must do until it is done: see integration/ledger/work.py.
work_items = Table(
    "work_items",
    metadata,
    Column("account", String(63), nullable=False, server_default=DEFAULT_ACCOUNT),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "kind", String(24), nullable=False
    ),  # deliver_call, send_event, fetch_recording, handle_event, rule_callback
    Column("subject", String(160), nullable=False),  # a call, outbox event or CRM event id
    Column("target", String(200), nullable=False),  # the CRM a call goes to, a rule's name, or ""
    Column("status", String(12), nullable=False),  # pending, done, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("result", Text),  # what the handler returned, where the domain row does not say it
    Column("created_at", UTCDateTime, nullable=False),  # the retry window starts here
    Column("finished_at", UTCDateTime),
    UniqueConstraint("account", "kind", "subject", "target", name="uq_work_items_key"),
)
Index("ix_work_items_due", work_items.c.status, work_items.c.next_attempt_at)
# An account's unfinished and stuck work (the console) without reading its done items.
Index("ix_work_items_account_status", work_items.c.account, work_items.c.status, work_items.c.kind)

# Accounts stored in the database (the environment's ``default`` is not): the account file's
# settings in clear (``settings``, JSON) and its secrets sealed with SECRET_KEYS (``secrets``).
accounts = Table(
    "accounts",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("settings", Text, nullable=False),
    Column("secrets", Text, nullable=False),
    Column("version", Integer, nullable=False),  # one more on every change: workers reload on it
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Each stored account's contract numbers (its OPERATOR_NUMBERS): the primary key keeps a number
# to one account, even against concurrent changes. The ledger deletes them with the account (no
# ON DELETE CASCADE: a SQLite batch migration that copies ``accounts`` would empty this table).
account_numbers = Table(
    "account_numbers",
    metadata,
    Column("number", String(10), primary_key=True),
    Column("account", String(63), ForeignKey("accounts.id"), nullable=False),
)
Index("ix_account_numbers_account", account_numbers.c.account)

# Who changed what, when, with what result (never a secret's value).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("account", String(63)),
    Column("action", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("result", String(200), nullable=False),
)
Index("ix_audit_log_account_at", audit_log.c.account, audit_log.c.at)

# People who sign in to the console. A user without an account administers the deployment.
console_users = Table(
    "console_users",
    metadata,
    Column("email", String(254), primary_key=True),
    Column("account", String(63)),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
)
Index("ix_console_users_account", console_users.c.account)
