"""The sandbox's state and rules, without HTTP: contracts, each with its tokens, calls, recordings,
settings, faults and stats, under one clock."""

from __future__ import annotations

import base64
import bisect
import random
import re
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from integration.sandbox import data
from integration.sandbox.tokens import mint, verify
from integration.timeutil import add_months

PHONE_TO = r"^(8\d{10}|810\d{6,15})$"
PHONE_FROM = r"^\d{10}$"
DEFAULT_CONTRACT = "default"  # the id of the contract made at start-up from SandboxConfig
CONTRACT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FIRST_NUMBER = 4_991_000_000  # generated numbers: Moscow's 499 and a counter, clear of the default ones
LAST_NUMBER = 4_999_999_999


class SandboxError(Exception):
    """An answer with an error: HTTP status, operator errorCode and errorMessage."""

    def __init__(self, status: int, code: int, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


class UnknownContract(LookupError):
    """A control request names a contract the sandbox does not have."""


class ContractConflict(ValueError):
    """A new contract's id or numbers are taken by another contract."""


@dataclass
class SandboxConfig:
    numbers: tuple[str, ...] = ("4990000000", "4950000000", "4950000001")
    contract: str = "883766"
    timezone: str = "Europe/Moscow"
    access_ttl: float = 24 * 3600
    refresh_ttl: float = 25 * 3600
    authorization_ttl: float = 365 * 86400
    seed: int = 1
    secret: bytes = field(default=b"sandbox-secret", repr=False)
    history_grace: float = 300.0  # seconds of slack on the one-month depth rule


@dataclass
class Fault:
    """An injected fault. ``kind``: 500, html502, html200, empty, 429, timeout, drop."""

    kind: str
    method: str = "*"
    count: int | None = 1  # None: until cleared
    rate: float = 1.0
    delay: float = 5.0  # for timeout
    retry_after: float = 1.0  # for 429
    after_effect: bool = True  # timeout/drop: do the work before failing

    def matches(self, method: str) -> bool:
        return self.method in ("*", method) and (self.count is None or self.count > 0)


class Clock:
    """The sandbox's time, one for all contracts: the real clock moved by ``offset`` seconds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)


class Contract:
    """One operator contract: its numbers, tokens, calls, recordings, settings, faults and stats,
    behind its own lock.

    Cheap to make, so one process holds thousands: the random generator, each number's settings
    and the history asked for at creation (``history``: calls over the last days) are made on
    first use.
    """

    def __init__(
        self, id: str, config: SandboxConfig, clock: Clock | None = None, history: tuple[int, float] | None = None
    ):
        self.id = id
        self.config = config
        self.clock = clock or Clock()
        self.tz = ZoneInfo(self.config.timezone)
        self.lock = threading.RLock()
        self._rng: random.Random | None = None
        self.reset()
        self.pending_history: tuple[int, float] | None = history if history and history[0] > 0 else None

    def reset(self) -> None:
        """Back to a fresh contract: a new authorization token, nothing received or generated."""
        with self.lock:
            self.enabled = True
            self.generation = 0
            self.pair_jti: str | None = None
            self.authorization_token: str | None = None
            self.access_ttl = self.config.access_ttl
            self.refresh_ttl = self.config.refresh_ttl
            self.callbacks: list[dict] = []
            self.calls: list[data.SandboxCall] = []
            self._ordered: list[data.SandboxCall] = []  # self.calls by start, see _calls_between
            self._ordered_count = 0
            self.pending_history = None
            self.recordings: dict[str, data.RecordingSpec] = {}
            self.results: dict[str, tuple[str, dict]] = {}
            self.settings: dict[str, dict] = {}  # made on first use: see settings_of
            self.faults: list[Fault] = []
            self.stats: Counter[str] = Counter()
            self.rotate_authorization_token()

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.config.seed)
        return self._rng

    def summary(self, token: bool = True) -> dict:
        """Who the contract is: id, contract number, numbers and (``token``) the authorization token."""
        summary: dict[str, object] = {
            "id": self.id,
            "contract": self.config.contract,
            "numbers": list(self.config.numbers),
        }
        if token:
            summary["authorization_token"] = self.authorization_token
        return summary

    def count(self, key: str) -> None:
        with self.lock:
            self.stats[key] += 1

    # -- clock --

    def now(self) -> datetime:
        return self.clock.now()

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    # -- tokens --

    def rotate_authorization_token(self) -> str:
        """A new authorization token (the cabinet's button): every older token stops working."""
        with self.lock:
            now = self.now()
            self.authorization_token = mint(
                {
                    "typ": "authorization",
                    "jti": uuid.uuid4().hex,
                    "contract": self.config.contract,
                    "contract_id": self.id,
                    "iat": int(now.timestamp()),
                    "exp": int(now.timestamp() + self.config.authorization_ttl),
                },
                self.config.secret,
            )
            self.invalidate_pair()
            return self.authorization_token

    def revoke_authorization_token(self) -> None:
        with self.lock:
            self.authorization_token = None
            self.invalidate_pair()

    def invalidate_pair(self) -> None:
        with self.lock:
            self.generation += 1
            self.pair_jti = None

    def _issue_pair(self) -> dict:
        self.generation += 1
        self.pair_jti = uuid.uuid4().hex
        now = self.now()
        claims = {
            "contract": self.config.contract,
            "contract_id": self.id,
            "gen": self.generation,
            "jti": self.pair_jti,
            "iat": int(now.timestamp()),
        }
        access_exp = now + timedelta(seconds=self.access_ttl)
        refresh_exp = now + timedelta(seconds=self.refresh_ttl)
        return {
            "accessToken": mint(claims | {"typ": "access", "exp": int(access_exp.timestamp())}, self.config.secret),
            "accessTokenExpiredIn": self.local(access_exp),
            "refreshToken": mint(claims | {"typ": "refresh", "exp": int(refresh_exp.timestamp())}, self.config.secret),
            "refreshTokenExpiredIn": self.local(refresh_exp),
        }

    def _check_pair_token(self, token: str, typ: str) -> None:
        claims = verify(token, self.config.secret)
        if not claims or claims.get("typ") != typ or claims.get("contract_id") != self.id:
            raise SandboxError(401, 401, f"invalid {typ} token")
        if claims.get("jti") != self.pair_jti or claims.get("gen") != self.generation:
            raise SandboxError(401, 401, f"{typ} token was invalidated")
        if claims.get("exp", 0) <= self.now().timestamp():
            raise SandboxError(401, 401, f"{typ} token expired")

    def create_pair(self, bearer: str) -> dict:
        with self.lock:
            self.stats["auth.create"] += 1
            claims = verify(bearer, self.config.secret)
            if not self.authorization_token or bearer != self.authorization_token or not claims:
                raise SandboxError(401, 401, "invalid authorization token")
            if claims.get("exp", 0) <= self.now().timestamp():
                raise SandboxError(401, 401, "authorization token expired")
            if not self.enabled:
                raise SandboxError(403, 403, "integration API is switched off")
            return self._issue_pair()

    def refresh_pair(self, bearer: str) -> dict:
        with self.lock:
            self.stats["auth.refresh"] += 1
            self._check_pair_token(bearer, "refresh")
            if not self.enabled:
                raise SandboxError(403, 403, "integration API is switched off")
            return self._issue_pair()

    def authorize(self, bearer: str) -> None:
        with self.lock:
            self._check_pair_token(bearer, "access")
            if not self.enabled:
                raise SandboxError(403, 403, "integration API is switched off")

    # -- envelope --

    def envelope(self, api_name: str, result: dict, store: bool = True) -> dict:
        request_hash = (
            base64.b64encode(secrets.token_bytes(16)).decode() + base64.b64encode(secrets.token_bytes(20)).decode()
        )
        body = {
            "error": {"errorMessage": "", "errorCode": 0},
            "result": {
                "apiName": api_name,
                "apiVersion": 1,
                "callTime": self.local(self.now()),
                "responseDuration": "0.010",
                "code": 0,
                "requestHash": request_hash,
                **result,
            },
        }
        if store:
            with self.lock:
                self.results[request_hash] = (api_name, body)
        return body

    def result_by_hash(self, request_hash: str) -> tuple[str, dict]:
        """The method name and stored answer of an earlier request."""
        with self.lock:
            if request_hash not in self.results:
                raise SandboxError(404, 404, "no request with this hash")
            return self.results[request_hash]

    # -- callbacks --

    def create_callback(
        self, phone_to: str | None, phone_from: str | None, received_at: datetime | None = None
    ) -> dict:
        if not phone_to or not re.match(PHONE_TO, phone_to):
            raise SandboxError(400, 400, "PhoneTo must be in national format: 8XXXXXXXXXX or 810…")
        if not phone_from or not re.match(PHONE_FROM, phone_from):
            raise SandboxError(400, 400, "PhoneFrom must be 10 digits without 8")
        if phone_from not in self.config.numbers:
            raise SandboxError(400, 400, "PhoneFrom is not a number of this contract")
        with self.lock:
            self._make_pending_history()
            now = self.now()
            self.callbacks.append(
                {
                    "PhoneTo": phone_to,
                    "PhoneFrom": phone_from,
                    "at": now.isoformat(),
                    "received_at": (received_at or now).isoformat(),
                }
            )
            ext = "+7" + phone_to[1:] if not phone_to.startswith("810") else "+" + phone_to[3:]
            self.calls.append(
                data.SandboxCall(
                    id=len(self.calls) + 1,
                    started_at=now.replace(microsecond=0),
                    num=phone_from,
                    direction=1,
                    ext_e164=ext,
                    ext_num=phone_to,
                    duration=self.rng.randrange(10, 300),
                    service="callback",
                )
            )
        return self.envelope("callback/create", {})

    # -- call history --

    def add_calls(
        self,
        count: int,
        since: datetime,
        until: datetime,
        nums: list[str] | None = None,
        recording_ratio: float = 0.4,
        recording_size: int = 32 * 1024,
        seed: int | None = None,
    ) -> list[data.SandboxCall]:
        with self.lock:
            self._make_pending_history()
            rng = random.Random(seed) if seed is not None else self.rng
            generated = data.generate_calls(
                rng, count, since, until, list(nums or self.config.numbers), len(self.calls) + 1, recording_ratio
            )
            for call, recorded in generated:
                if recorded:
                    size = max(int(recording_size * (0.5 + rng.random())), 64)
                    spec = self._make_recording(size, rng.getrandbits(31))
                    call.record_file_id = spec.id
                self.calls.append(call)
            return [call for call, _ in generated]

    def add_recording(self, size: int, ready_in: float = 0.0, seed: int | None = None) -> data.RecordingSpec:
        with self.lock:
            ready_at = self.now() + timedelta(seconds=ready_in) if ready_in > 0 else None
            return self._make_recording(size, seed if seed is not None else self.rng.getrandbits(31), ready_at)

    def _make_recording(self, size: int, seed: int, ready_at: datetime | None = None) -> data.RecordingSpec:
        """A recording kept by id; another contract's recording made from the same seed has another id."""
        salted = None if self.id == DEFAULT_CONTRACT else random.Random(f"{self.id}/{seed}").getrandbits(128)
        record_id = str(uuid.UUID(int=salted, version=4)) if salted is not None else None
        spec = data.make_recording(size, seed=seed, ready_at=ready_at, id=record_id)
        self.recordings[spec.id] = spec
        return spec

    def _make_pending_history(self) -> None:
        """The history asked for at creation, made now that something reads or extends it."""
        with self.lock:
            if self.pending_history:
                count, days = self.pending_history
                self.pending_history = None
                now = self.now()
                self.add_calls(count, now - timedelta(days=days), now)

    def call_list(self, body: object) -> dict:
        if not isinstance(body, dict):
            raise SandboxError(400, 400, "body must be a JSON object")
        nums = body.get("nums")
        if not isinstance(nums, list) or not nums:
            raise SandboxError(400, 400, "nums must be a non-empty list")
        unknown = [n for n in nums if str(n) not in self.config.numbers]
        if unknown:
            raise SandboxError(400, 400, f"numbers not on this contract: {', '.join(map(str, unknown))}")
        start, end = (
            self._parse_time(body.get("periodStart"), "periodStart"),
            self._parse_time(body.get("periodEnd"), "periodEnd"),
        )
        now = self.now()
        if start > end:
            raise SandboxError(400, 400, "periodStart is after periodEnd")
        if end > add_months(start, 1) + timedelta(seconds=1):
            raise SandboxError(400, 400, "the period is longer than one month")
        if start < add_months(now.astimezone(self.tz), -1) - timedelta(seconds=self.config.history_grace):
            raise SandboxError(400, 400, "search depth is limited to one month")
        direction = body.get("direction") or 0
        duration_from, duration_to = body.get("durationFrom"), body.get("durationTo")
        only_recorded = bool(body.get("isCallRecord"))
        is_read = body.get("isRead")
        with self.lock:
            self._make_pending_history()
            wanted = set(map(str, nums))
            rows = [
                self.row(call)
                for call in self._calls_between(start, end)
                if call.num in wanted
                and (not direction or call.direction == direction)
                and (duration_from is None or call.duration >= duration_from)
                and (duration_to is None or call.duration <= duration_to)
                and (not only_recorded or call.record_file_id)
                and (is_read is None or call.is_read == is_read)
            ]
        return self.envelope("getcalllist", {"rowset": rows})

    def _calls_between(self, start: datetime, end: datetime) -> list[data.SandboxCall]:
        """The calls started in ``[start, end]`` in time order, found by bisection (as the
        operator's own index would): a day's request costs a day's calls, not the whole history."""
        if self._ordered_count != len(self.calls):  # calls are only ever appended (or reset)
            self._ordered = sorted(self.calls, key=lambda c: (c.started_at, c.id))
            self._ordered_count = len(self.calls)
        lower = bisect.bisect_left(self._ordered, start, key=lambda c: c.started_at)
        upper = bisect.bisect_right(self._ordered, end, key=lambda c: c.started_at)
        return self._ordered[lower:upper]

    def row(self, call: data.SandboxCall) -> dict:
        return {
            "callDate": self.local(call.started_at),
            "service": call.service,
            "extNum": call.ext_num,
            "num": call.num,
            "direction": call.direction,
            "duration": call.duration,
            "recordFileId": call.record_file_id,
            "isRead": call.is_read,
        }

    def _parse_time(self, value: object, name: str) -> datetime:
        try:
            return datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.tz).astimezone(UTC)
        except ValueError:
            raise SandboxError(400, 400, f"{name} must be 'yyyy-mm-dd hh:mm:ss'") from None

    def recording(self, record_file_id: str | None) -> data.RecordingSpec:
        with self.lock:
            self._make_pending_history()
            spec = self.recordings.get(record_file_id or "")
            if spec is None:
                raise SandboxError(404, 404, "record file not found")
            if spec.ready_at and spec.ready_at > self.now():
                raise SandboxError(404, 1404, "record file is not ready yet")
            return spec

    # -- settings --

    def settings_of(self, num: str) -> dict | None:
        """The PBX settings of a number of this contract (the reference's example until changed), or None."""
        with self.lock:
            if num not in self.settings and num in self.config.numbers:
                index = self.config.numbers.index(num)
                self.settings[num] = data.default_settings(num, self.config.contract, 1000 * (index + 1))
            return self.settings.get(num)

    def get_settings(self, body: object) -> dict:
        nums = body.get("nums") if isinstance(body, dict) else None
        if not isinstance(nums, list) or not nums:
            raise SandboxError(400, 400, "nums must be a non-empty list")
        with self.lock:
            found = [self.settings_of(str(n)) for n in nums]
            missing = [n for n, document in zip(nums, found, strict=True) if document is None]
            if missing:
                raise SandboxError(400, 400, f"numbers not on this contract: {', '.join(map(str, missing))}")
            return self.envelope("Vats/settings/get", {"vatsSettings": found})

    def set_settings(self, body: object) -> dict:
        documents = body.get("vatsSettings") if isinstance(body, dict) else None
        if not isinstance(documents, list) or not documents:
            raise SandboxError(400, 400, "vatsSettings must be a non-empty list")
        with self.lock:
            problems = []
            for document in documents:
                num = str(document.get("num", "")) if isinstance(document, dict) else ""
                stored = self.settings_of(num)
                if stored is None:
                    problems.append(f"number {num or '?'} is not on this contract")
                    continue
                problems += data.validate_settings(document, stored)
            if problems:
                raise SandboxError(400, 422, "; ".join(problems))
            for document in documents:
                self.settings[str(document["num"])] = data.apply_editable(self.settings[str(document["num"])], document)
            return self.envelope("Vats/settings/set", {})

    # -- faults --

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method) and self.rng.random() < fault.rate:
                    if fault.count is not None:
                        fault.count -= 1
                    return fault
            return None

    def canonical_calls(self) -> list[dict]:
        with self.lock:
            self._make_pending_history()
            return [
                {
                    "id": c.id,
                    "started_at": c.started_at.isoformat(),
                    "num": c.num,
                    "direction": c.direction,
                    "ext_e164": c.ext_e164,
                    "ext_num": c.ext_num,
                    "duration": c.duration,
                    "service": c.service,
                    "record_file_id": c.record_file_id,
                    "is_read": c.is_read,
                    "recording_sha256": self.recordings[c.record_file_id].sha256 if c.record_file_id else None,
                }
                for c in self.calls
            ]


class Sandbox:
    """The operator: contracts by id under one clock, the default one made at start-up from the config.

    Operator requests reach a contract by the token they carry (``route``): every token the
    sandbox mints names its contract, under the signature.
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.clock = Clock()
        self.lock = threading.RLock()  # the registry; each contract has its own
        self.contracts: dict[str, Contract] = {}
        self.owners: dict[str, str] = {}  # number → contract id
        self._serial = 0
        self._next_number = FIRST_NUMBER
        self.default = self._register(DEFAULT_CONTRACT, self.config)

    def reset(self) -> None:
        """Back to a fresh sandbox: the clock unmoved, the default contract fresh, no other contract."""
        with self.lock:
            self.clock.offset = 0.0
            for contract_id in list(self.contracts):
                if contract_id != DEFAULT_CONTRACT:
                    self.remove_contract(contract_id)
            self._serial = 0
            self._next_number = FIRST_NUMBER
            self.default.reset()

    def now(self) -> datetime:
        return self.clock.now()

    # -- contracts --

    def contract(self, contract_id: str) -> Contract:
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise UnknownContract(f"no contract {contract_id}")
        return contract

    def route(self, token: str) -> Contract:
        """The contract a token names; the default one for a token naming none (garbage, missing)."""
        claims = verify(token, self.config.secret) if token else None
        named = self.contracts.get(str(claims.get("contract_id"))) if claims else None
        return named or self.default

    def create_contract(
        self,
        contract_id: str | None = None,
        numbers: list[str] | None = None,
        number_count: int = 1,
        contract: str | None = None,
        seed: int | None = None,
        calls: int = 0,
        days: float = 7.0,
    ) -> Contract:
        """A new contract with ``numbers`` (or ``number_count`` new ones) and, made on first use,
        ``calls`` calls over the last ``days`` days."""
        with self.lock:
            self._serial += 1
            if contract_id is None:
                while f"c{self._serial}" in self.contracts:
                    self._serial += 1
                contract_id = f"c{self._serial}"
            if not CONTRACT_ID.match(contract_id):
                raise ValueError("a contract id is 1-64 letters, digits, '_', '-' or '.'")
            if contract_id in self.contracts:
                raise ContractConflict(f"contract {contract_id} exists")
            config = replace(
                self.config,
                numbers=self._claimable(numbers) if numbers is not None else self._new_numbers(number_count),
                contract=contract or str(700_000 + self._serial),
                seed=seed if seed is not None else self.config.seed + self._serial,
            )
            return self._register(contract_id, config, (calls, days))

    def create_contracts(
        self, count: int, seed: int | None = None, number_count: int = 1, calls: int = 0, days: float = 7.0
    ) -> list[Contract]:
        """``count`` contracts with new ids and numbers (seeds ``seed``, ``seed + 1``, … when given)."""
        if not 1 <= count <= 1_000_000:
            raise ValueError("count must be 1-1000000")
        return [
            self.create_contract(None, None, number_count, None, None if seed is None else seed + index, calls, days)
            for index in range(count)
        ]

    def remove_contract(self, contract_id: str) -> None:
        with self.lock:
            if contract_id == DEFAULT_CONTRACT:
                raise ValueError("the default contract stays")
            contract = self.contracts.pop(self.contract(contract_id).id)
            for number in contract.config.numbers:
                self.owners.pop(number, None)

    def _register(self, contract_id: str, config: SandboxConfig, history: tuple[int, float] | None = None) -> Contract:
        contract = Contract(contract_id, config, self.clock, history)
        self.contracts[contract_id] = contract
        self.owners.update(dict.fromkeys(config.numbers, contract_id))
        return contract

    def _claimable(self, numbers: list[str]) -> tuple[str, ...]:
        """``numbers`` checked: 10 digits each, no repeats, on no other contract."""
        numbers = [str(number) for number in numbers]
        if not numbers or any(not re.match(PHONE_FROM, number) for number in numbers):
            raise ValueError("numbers must be a non-empty list of 10-digit numbers")
        if len(set(numbers)) != len(numbers):
            raise ValueError("numbers repeat")
        taken = [f"{number} (contract {self.owners[number]})" for number in numbers if number in self.owners]
        if taken:
            raise ContractConflict(f"numbers on another contract: {', '.join(taken)}")
        return tuple(numbers)

    def _new_numbers(self, count: int) -> tuple[str, ...]:
        """``count`` numbers on no contract: 499 and a counter from 1000000."""
        if not 1 <= count <= 1000:
            raise ValueError("number_count must be 1-1000")
        numbers: list[str] = []
        while len(numbers) < count:
            if self._next_number > LAST_NUMBER:
                raise ContractConflict("no numbers left")
            number = str(self._next_number)
            self._next_number += 1
            if number not in self.owners:
                numbers.append(number)
        return tuple(numbers)
