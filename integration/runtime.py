"""The process's shared resources, built lazily from settings.

Nothing connects at import or construction; each resource is made on first use and then reused
(connection pools, the RQ queue with its cached server version, the marshmallow schemas).
"""

from __future__ import annotations

import math
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from integration.accounts import DEFAULT, Accounts
from integration.callbacks import JOB, JOB_TIMEOUT, CallbackIntake, job_options
from integration.config import Settings
from integration.crm.base import CrmAdapter
from integration.crm.registry import build_crm
from integration.keys import scoped
from integration.ledger.accounts import AccountLedger, AuditLog
from integration.ledger.callbacks import CallbackLedger
from integration.ledger.calls import CallLedger
from integration.ledger.db import make_engine
from integration.ledger.deliveries import DeliveryLedger
from integration.ledger.events import EventLedger
from integration.ledger.outbox import Outbox
from integration.ledger.recordings import RecordingLedger
from integration.ledger.users import UserLedger
from integration.ledger.work import WorkLedger
from integration.metrics import Metrics
from integration.operator.client import OperatorClient, cookieless_session
from integration.operator.factory import build_operator_client
from integration.queues import BULK, CALLBACKS, WORK_LEASE, Enqueuer, enqueue_missing, enqueue_work, make_queue
from integration.queues import DEFAULT as DEFAULT_QUEUE
from integration.ratelimit import Slots
from integration.recordings.links import LinkSigner
from integration.recordings.storage import LocalStore
from integration.secretbox import SecretBox
from integration.users import ConsoleUsers

if TYPE_CHECKING:
    from collections.abc import Sequence

    import requests  # annotations only: the operator client makes the session
    from rq import Queue
    from sqlalchemy import Engine  # annotations only: the ledger builds the engine


class Runtime:
    """One account's resources. A stored account's runtime (``integration.runtimes``) shares the
    process's connections with the environment's (``shared``): Redis, the database, metrics, the
    secret box and the stored accounts are the deployment's, not the account's."""

    def __init__(self, settings: Settings, *, shared: Runtime | None = None, account: str = DEFAULT):
        self.settings = settings
        self.account = account
        self.shared = shared
        self.repaired_at = -math.inf  # when ``sync_calls`` last repaired this account's work (monotonic)

    def key(self, name: str) -> str:
        """A Redis key (or prefix) of this account (``integration.keys``)."""
        return scoped(self.account, name)

    @cached_property
    def redis(self) -> redis.Redis:
        if self.shared is not None:
            return self.shared.redis
        return redis.Redis.from_url(self.settings.redis_url, socket_connect_timeout=5, health_check_interval=30)

    @cached_property
    def engine(self) -> Engine:
        return self.shared.engine if self.shared is not None else make_engine(self.settings.database_url)

    @cached_property
    def metrics(self) -> Metrics:
        return self.shared.metrics if self.shared is not None else Metrics(self.redis)

    @cached_property
    def secret_box(self) -> SecretBox:
        return self.shared.secret_box if self.shared is not None else SecretBox(self.settings.secret_keys)

    @cached_property
    def accounts(self) -> Accounts:
        """The stored accounts (the environment's is ``default``)."""
        if self.shared is not None:
            return self.shared.accounts
        return Accounts(AccountLedger(self.engine), AuditLog(self.engine), self.secret_box, self.settings)

    @cached_property
    def users(self) -> ConsoleUsers:
        """The console's users (the deployment's, like the accounts)."""
        if self.shared is not None:
            return self.shared.users
        return ConsoleUsers(UserLedger(self.engine), AuditLog(self.engine), self.accounts.exists)

    @cached_property
    def operator_session(self) -> requests.Session:
        """One connection pool for every account's operator calls (it keeps no cookies)."""
        return self.shared.operator_session if self.shared is not None else cookieless_session()

    @cached_property
    def operator(self) -> OperatorClient:
        """Tokens live in Redis, so this process never invalidates another's pair."""
        client = build_operator_client(self.settings, self.redis, box=self.secret_box, session=self.operator_session)
        client.on_call = self._record_operator_call
        return client

    def _record_operator_call(self, method: str, outcome: str, seconds: float) -> None:
        self.metrics.inc("vats_operator_calls_total", method=method, outcome=outcome)
        self.metrics.observe("vats_operator_call_seconds", seconds, method=method)

    @cached_property
    def callback_ledger(self) -> CallbackLedger:
        return CallbackLedger(self.engine, self.account)

    @cached_property
    def call_ledger(self) -> CallLedger:
        return CallLedger(self.engine, self.account)

    @cached_property
    def delivery_ledger(self) -> DeliveryLedger:
        return DeliveryLedger(self.engine, self.account)

    @cached_property
    def outbox(self) -> Outbox:
        return Outbox(self.engine, self.account)

    @cached_property
    def event_ledger(self) -> EventLedger:
        return EventLedger(self.engine, self.account)

    @cached_property
    def recording_ledger(self) -> RecordingLedger:
        return RecordingLedger(self.engine, self.account)

    @cached_property
    def work_ledger(self) -> WorkLedger:
        return WorkLedger(self.engine, self.account)

    @cached_property
    def recording_store(self) -> LocalStore:
        """A stored account's recordings live in ``<RECORDINGS_DIR>/a/<account>/``."""
        root = Path(self.settings.recordings_dir)
        return LocalStore(root if self.account == DEFAULT else root / "a" / self.account)

    @cached_property
    def links(self) -> LinkSigner:
        settings = self.settings
        return LinkSigner(settings.recording_link_keys, settings.public_url, settings.recording_link_ttl, self.account)

    def recording_url(self, call_id: str) -> str | None:
        """The signed link of a call's stored recording (None: none stored, or links are off)."""
        recording = self.recording_ledger.get(call_id) if self.links.enabled else None
        if recording is None or recording.status != "stored":
            return None
        return self.links.url(recording.id, time.time())

    @cached_property
    def crm(self) -> CrmAdapter:
        """The CRM of ``CRM_BACKEND``."""
        return build_crm(self)

    def queue_work(self, kind: str, subject: str, target: str = "", attempt: int = 0, *, bulk: bool = False) -> None:
        """Queue one attempt of this account's work item (its job names the account); ``bulk``:
        part of a large backlog, served after every account's other work."""
        enqueue_work(self.work_queue(bulk), kind, subject, target, attempt, self.account)

    def queue_missing_work(self, items: Sequence[tuple[str, str, str, int]], *, bulk: bool = False) -> int:
        """Queue the (kind, subject, target, attempt) items that have no job yet; how many."""
        return enqueue_missing(self.work_queue(bulk), items, self.account)

    def work_queue(self, bulk: bool = False) -> Queue:
        return make_queue(BULK if bulk else DEFAULT_QUEUE, self.redis)

    @cached_property
    def slots(self) -> Slots:
        """How many workers this account's work items may hold at once (``ACCOUNT_CONCURRENCY``)."""
        return Slots(self.redis, self.key("vats:slots"), self.settings.account_concurrency, lease=WORK_LEASE)

    @cached_property
    def callback_slots(self) -> Slots:
        """How many click-to-calls of this account may be placed at once (``ACCOUNT_CALLBACK_CONCURRENCY``)."""
        most = self.settings.account_callback_concurrency
        return Slots(self.redis, self.key("vats:slots:callbacks"), most, lease=JOB_TIMEOUT)

    @cached_property
    def intake(self) -> CallbackIntake:
        return CallbackIntake(
            self.redis,
            Enqueuer(make_queue(CALLBACKS, self.redis), JOB, **job_options(self.settings.callback_ttl)),
            ttl=self.settings.callback_ttl,
            debounce=self.settings.click_to_call_debounce,
            account=self.account,
        )
