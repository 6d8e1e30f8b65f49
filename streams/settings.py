"""The worker's settings: one frozen, validated object read from ``STREAMREC_*`` variables.

Every field is typed, defaulted and documented; ``streamrec settings`` prints them, and
``streamrec settings --markdown`` prints the README's settings table from the same
descriptions (a test keeps the README equal to it). An unknown
``STREAMREC_*`` variable is a start-up error that names the closest valid one (a typo must
not silently do nothing). Defaults are safe for production
(RocksDB state, changelogs on) and fast for development (short group timeouts suit the
embedded broker; production deployments raise them, see the README).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.events import DecodeLimits, EventType
from schemas.rules import Rule, parse_rule_list

ENV_PREFIX = "STREAMREC_"


class Settings(BaseSettings):
    """All knobs of a streamrec worker, read from the environment under ``STREAMREC_``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", protected_namespaces=()
    )

    # --- broker -------------------------------------------------------------------------
    broker_url: str = Field(
        "kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers as a Faust URL; several separated by ';'.",
    )
    broker_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol for every client of the worker."
    )
    broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism when the protocol is SASL_*."
    )
    broker_sasl_username: str | None = Field(None, description="SASL user name.")
    broker_sasl_password: str | None = Field(
        None, description="SASL password (never logged).", repr=False
    )
    broker_ssl_cafile: Path | None = Field(None, description="CA bundle for TLS.")
    broker_ssl_certfile: Path | None = Field(None, description="Client certificate (mTLS).")
    broker_ssl_keyfile: Path | None = Field(None, description="Client private key (mTLS).")
    broker_session_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Consumer group session timeout. Short by default so the embedded "
        "broker's first group join is quick; raise it (e.g. 45) on busy production clusters.",
    )
    broker_rebalance_timeout_s: float = Field(
        10.0, gt=0, description="Consumer group rebalance timeout (see session timeout)."
    )
    broker_heartbeat_interval_s: float = Field(
        1.0, gt=0, description="Consumer heartbeat interval; well below the session timeout."
    )
    broker_fetch_max_wait_s: float = Field(
        0.02,
        ge=0.001,
        le=5.0,
        description="Longest a fetch waits for new records (Faust fixes 1.5 s). Short, so a "
        "hop that ran dry costs little freshness on brokers that hold a fetch for its whole "
        "wait (the embedded one does).",
    )

    # --- topics -------------------------------------------------------------------------
    topic_views: str = Field("views", description="Input topic for view events.")
    topic_clicks: str = Field("clicks", description="Input topic for click events.")
    topic_purchases: str = Field("purchases", description="Input topic for purchase events.")
    topic_searches: str = Field("searches", description="Input topic for search events.")
    add_to_cart_topic: Literal["clicks", "views", "purchases"] = Field(
        "clicks", description="Which input topic carries add_to_cart events."
    )
    topic_recommendations: str = Field(
        "recommendations", description="Output topic; keyed by user_id."
    )
    topic_dead_letter: str = Field("streamrec.dlq", description="Dead-letter topic.")
    topic_events_by_user: str = Field(
        "streamrec.events-by-user",
        description="Internal topic holding validated events re-keyed by user_id.",
    )
    topic_user_erasure: str = Field(
        "user_erasure", description="Topic of user ids whose state must be erased."
    )
    topic_items: str = Field(
        "items",
        description="Catalogue topic (log-compacted, key = item_id, null value = removed); "
        "every worker reads all of it.",
    )
    topic_rules: str = Field(
        "rules",
        description="Business-rules topic (log-compacted, key = rule_id, null value = "
        "removed); every worker reads all of it and applies it live.",
    )
    topic_control: str = Field(
        "streamrec.control",
        description="Model lifecycle topic (log-compacted, one partition): promotions and "
        "experiments; every worker reads all of it and applies it live.",
    )
    topic_feedback: str = Field(
        "streamrec.feedback",
        description="Attribution log: recommendations served under an experiment and every "
        "click, cart and purchase credited to a recommendation (what 'experiment report' "
        "reads; the log to learn from and audit).",
    )
    topic_shadow: str = Field(
        "recommendations.shadow",
        description="What a shadow variant would have recommended (never sent to users).",
    )
    topic_partitions: int = Field(
        4, ge=1, description="Partitions of every topic streamrec creates (the control topic "
        "has one)."
    )
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication factor of every topic streamrec creates."
    )

    # --- worker -------------------------------------------------------------------------
    app_id: str = Field(
        "streamrec", description="Faust application id: consumer group and table prefix."
    )
    worker_id: str | None = Field(
        None, description="Name of this worker in logs (defaults to the host name)."
    )
    data_dir: Path = Field(
        Path("./var/streamrec"), description="Where RocksDB state and Faust data live."
    )
    standby_replicas: int = Field(
        1, ge=0, description="Standby table replicas kept warm on other workers."
    )
    web_host: str = Field(
        "0.0.0.0",
        description="Address the worker's HTTP server binds; other workers reach it there for "
        "/users routing (0.0.0.0: the address the host name resolves to, e.g. the pod IP).",
    )
    web_port: int = Field(6066, ge=1, le=65535, description="Port of /metrics, /healthz, ...")
    users_api_enabled: bool = Field(True, description="Serve GET /users/{user_id}.")
    users_api_token: str | None = Field(
        None,
        description="When set, /users/{id} requires 'Authorization: Bearer <token>'.",
        repr=False,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the worker."
    )
    log_format: Literal["text", "json"] = Field("text", description="Log line format.")

    # --- micro-batches and scoring ------------------------------------------------------
    batch_max_events: int = Field(
        500, ge=1, description="Most events per micro-batch of one partition."
    )
    batch_max_seconds: float = Field(
        0.01, gt=0, description="Longest a micro-batch waits to fill before it is processed."
    )
    skip_rekey_hop: bool = Field(
        True,
        description="Apply an input event to its user's state in the ingest actor, without "
        "the events-by-user hop, when it arrived in the partition that owns its user (a "
        "producer keyed by user_id with murmur2) and this worker owns that state partition. "
        "False: every event takes the hop (one more broker round trip and fetch wait).",
    )
    model_dir: Path | None = Field(
        None,
        description="Model directory written by 'streamrec train'. Unset: trending only "
        "(every recommendation is a fallback marked 'no_model').",
    )
    model_registry: Path | None = Field(
        None,
        description="Model registry directory shared by the workers (a volume): versions "
        "published by 'streamrec models publish', served as promoted on the control topic. "
        "Exclusive with model_dir.",
    )
    model_load_timeout_s: float = Field(
        120.0, gt=0,
        description="Longest loading, warming and validating one model version may take "
        "before it counts as failed (the serving version stays).",
    )
    model_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="ONNX Runtime device; 'auto' uses CUDA only when it is usable."
    )
    model_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads.")
    model_retrieval: Literal["auto", "exact", "ann"] = Field(
        "auto",
        description="How the model finds its candidates: 'exact' scores the whole catalogue; "
        "'ann' encodes the session and retrieves model_candidates items from an HNSW index "
        "over the model's item vectors, then scores only those; 'auto' is ann for large "
        "catalogues when the model directory has the encoder (see README 'Models').",
    )
    model_candidates: int = Field(
        50, ge=10, le=10_000,
        description="Items retrieved per user in 'ann' mode before exact scoring (50: "
        "within 0.3 HR@20 points of exact on Diginetica at 0.09 CPU ms per user, "
        "docs/performance.md).",
    )
    top_k: int = Field(20, ge=1, le=500, description="Items per recommendation.")
    exclude_recent: bool = Field(
        False, description="Also exclude items the user interacted with in this session."
    )
    exclude_purchased_days: float | None = Field(
        None,
        gt=0,
        description="Exclude items the user bought within this many days of their newest "
        "event; unset: every purchase kept in state (see max_purchased) is excluded forever.",
    )
    rules: str = Field(
        "[]",
        description="Business rules: a JSON array of rule objects (schemas/rule.schema.json: "
        "exclusions, boosts, category caps, price ranges); a rule on the rules topic with the "
        "same rule_id replaces one from here.",
    )

    # --- catalogue and text ------------------------------------------------------------
    text_model_path: Path = Field(
        Path("var/text-model/use-multilingual-v3-quantized.onnx"),
        description="The multilingual text encoder ('streamrec text-model fetch' writes it "
        "there). Missing or broken: items are kept without text and recommendations use "
        "ids only (counted as fallback 'text_unavailable').",
    )
    text_model_threads: int = Field(
        1, ge=1, description="ONNX Runtime intra-op threads of the text encoder."
    )
    content_slots: int = Field(
        5,
        ge=0,
        le=500,
        description="Of the top_k items, how many go to items whose text resembles the "
        "user's recent items (0: model ranking only). See README 'Candidates'.",
    )
    content_history: int = Field(
        5, ge=1, le=50, description="Recent items whose text makes the user's content query."
    )
    search_boost: float = Field(
        2.0, ge=0, le=100,
        description="How strongly a fresh search steers the list: each item gains this times "
        "its text similarity to the query, on top of its relevance from the pool (0 to 1) "
        "(0: searches are ignored; 2: a fresh search leads the list for about one half-life).",
    )
    search_half_life_s: float = Field(
        900.0, gt=0, description="A search's weight halves every this many seconds."
    )
    query_cache_size: int = Field(
        10_000, ge=0, description="Embedded search queries kept (least recently used go)."
    )
    diversity_lambda: float = Field(
        0.0, ge=0, le=1,
        description="Maximal-marginal-relevance trade-off over item text: 0 keeps relevance "
        "order, towards 1 favours items unlike those already listed.",
    )
    category_cap: int | None = Field(
        None, ge=1, description="Most items of one root category per list (unset: no cap)."
    )
    explain: bool = Field(
        True, description="Give every recommended item its reason ({\"kind\": ...})."
    )
    catalog_max_batch: int = Field(
        256, ge=1, description="Most catalogue records read and embedded per batch."
    )

    # --- attribution and experiments -----------------------------------------------------
    attribution_click_window_s: float = Field(
        1800.0, gt=0,
        description="A click on an item of the user's latest recommendation within this long "
        "after it was generated counts for it (without properties.recommendation_id).",
    )
    attribution_cart_window_s: float = Field(
        1800.0, gt=0, description="The same window for add_to_cart."
    )
    attribution_purchase_window_s: float = Field(
        86400.0, gt=0, description="The same window for purchases."
    )
    attribution_ledger_size: int = Field(
        8, ge=1, le=100,
        description="Recent recommendations kept per user for attribution by "
        "properties.recommendation_id (older ids are matched by the window rule only).",
    )
    guard_max_p_value: float = Field(
        0.001, gt=0, lt=1,
        description="Guard rail: a variant whose scoring-error-or-fallback rate is higher "
        "than the control's with a one-sided p-value below this is rolled back.",
    )
    guard_min_users: int = Field(
        200, ge=1,
        description="Guard rail: users scored per variant (on one worker) before it judges.",
    )

    # --- input limits -------------------------------------------------------------------
    max_payload_bytes: int = Field(
        65536, ge=256, description="Larger input messages are dead-lettered."
    )
    max_future_skew_s: float = Field(
        300.0,
        gt=0,
        description="Events further in the future are dead-lettered (producer clock skew; "
        "a far-future event would make every real event after it count as late).",
    )
    max_event_age_s: float = Field(
        365 * 86400.0, gt=0, description="Events older than this are dead-lettered."
    )

    # --- state bounds -------------------------------------------------------------------
    max_sequence_len: int = Field(50, ge=1, description="Recent interactions kept per user.")
    max_purchased: int = Field(200, ge=0, description="Purchased items kept per user.")
    max_searches: int = Field(
        5, ge=0, description="Recent search queries kept per user (0: none)."
    )
    dedup_window: int = Field(100, ge=1, description="Recent event ids kept per user.")
    session_gap_s: float = Field(1800.0, gt=0, description="Inactivity that ends a session.")
    reorder_window_s: float = Field(
        300.0, ge=0, description="Out-of-order events this late are still put in order."
    )
    user_ttl_s: float = Field(
        30 * 86400.0, gt=0, description="Users inactive this long are expired."
    )
    trending_half_life_s: float = Field(3600.0, gt=0, description="Trending decay half-life.")
    trending_capacity: int = Field(
        1000, ge=10, description="Items kept on each partition's trending board."
    )
    rocksdb_block_cache_bytes: int = Field(
        64 * 1024 * 1024, ge=1024 * 1024,
        description="RocksDB block cache per users-table partition (bounds memory).",
    )
    rocksdb_write_buffer_bytes: int = Field(
        8 * 1024 * 1024, ge=1024 * 1024,
        description="RocksDB memtable size per users-table partition (two at most).",
    )

    memory_trim_interval_s: float = Field(
        30.0, ge=0,
        description="How often the worker hands free heap pages back to the system "
        "(glibc malloc_trim; 0 = never).",
    )

    # --- privacy ------------------------------------------------------------------------
    pseudonymisation_key: str | None = Field(
        None,
        description="When set, user ids are replaced by HMAC-SHA256(key, user_id) at "
        "ingestion. Never logged.",
        repr=False,
    )

    @field_validator("broker_url")
    @classmethod
    def _broker_url_has_scheme(cls, value: str) -> str:
        for url in value.split(";"):
            if "://" not in url:
                raise ValueError(f"expected e.g. kafka://host:9092, got {url!r}")
        return value

    @field_validator("rules")
    @classmethod
    def _rules_are_valid(cls, value: str) -> str:
        parse_rule_list(value)  # InvalidRuleError (a ValueError) names the rule and the fault
        return value

    @model_validator(mode="after")
    def _timeouts_consistent(self) -> Settings:
        if self.broker_heartbeat_interval_s >= self.broker_session_timeout_s:
            raise ValueError("broker_heartbeat_interval_s must be below the session timeout")
        if self.model_dir is not None and self.model_registry is not None:
            raise ValueError("set STREAMREC_MODEL_DIR (one fixed model) or "
                             "STREAMREC_MODEL_REGISTRY (promoted versions), not both")
        if self.broker_security_protocol.startswith("SASL") and not self.broker_sasl_username:
            raise ValueError("SASL needs STREAMREC_BROKER_SASL_USERNAME and _PASSWORD")
        return self

    @property
    def rule_list(self) -> tuple[Rule, ...]:
        """The rules of ``STREAMREC_RULES``, decoded (they were validated at start-up)."""
        return parse_rule_list(self.rules)

    @property
    def input_topics(self) -> tuple[str, ...]:
        """The topics producers write events to, one per event type but add_to_cart."""
        return (self.topic_views, self.topic_clicks, self.topic_purchases, self.topic_searches)

    @property
    def topic_event_types(self) -> Mapping[str, frozenset[EventType]]:
        """Which event types each input topic carries (anything else there is dead-lettered
        as ``wrong_topic``).

        >>> routes = Settings().topic_event_types
        >>> sorted(routes["clicks"])
        [<EventType.ADD_TO_CART: 'add_to_cart'>, <EventType.CLICK: 'click'>]
        """
        routes: dict[str, set[EventType]] = {topic: set() for topic in self.input_topics}
        for event_type in EventType:
            routes[self.topic_for(event_type)].add(event_type)
        return MappingProxyType({topic: frozenset(types) for topic, types in routes.items()})

    def decode_limits(self) -> DecodeLimits:
        """The checks beyond the schema every event gets — payload size, timestamp window,
        which types each topic carries — for the worker's ingest and the producer client."""
        return DecodeLimits(
            max_payload_bytes=self.max_payload_bytes,
            max_future_skew_s=self.max_future_skew_s,
            max_past_age_s=self.max_event_age_s,
            topic_event_types=self.topic_event_types,
        )

    def topic_for(self, event_type: str) -> str:
        """The input topic producers publish an event type to.

        >>> Settings().topic_for("add_to_cart")
        'clicks'
        """
        topic: str = {
            EventType.VIEW: self.topic_views,
            EventType.CLICK: self.topic_clicks,
            EventType.ADD_TO_CART: getattr(self, f"topic_{self.add_to_cart_topic}"),
            EventType.PURCHASE: self.topic_purchases,
            EventType.SEARCH: self.topic_searches,
        }[EventType(event_type)]
        return topic

    def to_env(self) -> dict[str, str]:
        """``STREAMREC_*`` variables that reproduce these settings in another process.

        >>> Settings(top_k=5).to_env()["STREAMREC_TOP_K"]
        '5'
        """
        return {
            f"{ENV_PREFIX}{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    @property
    def bootstrap_servers(self) -> list[str]:
        """Broker URLs as ``host:port`` strings, for clients other than Faust."""
        return [url.split("://", 1)[1] for url in self.broker_url.split(";")]


def settings_table() -> str:
    """Every setting as a Markdown table row: variable, default, description — the README's
    settings table is this output (``streamrec settings --markdown``; a test compares)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "(unset)" if field.default is None else field.default
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Problems with ``STREAMREC_*`` variables that name no setting, each with the closest
    valid name.

    >>> unknown_variables({"STREAMREC_TOPK": "5", "STREAMREC_TOP_K": "5", "PATH": "/bin"})
    ['STREAMREC_TOPK is not a setting (did you mean STREAMREC_TOP_K?)']
    """
    valid = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields]
    problems = []
    for variable in sorted(environ):
        if not variable.upper().startswith(ENV_PREFIX) or variable.upper() in valid:
            continue
        close = difflib.get_close_matches(variable.upper(), valid, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see 'streamrec settings --help'"
        problems.append(f"{variable} is not a setting ({hint})")
    return problems


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; ``overrides`` win. Raises SettingsError for an
    invalid value or an unknown ``STREAMREC_*`` variable."""
    from pydantic import ValidationError

    from streams.errors import SettingsError

    unknown = unknown_variables(os.environ)
    if unknown:
        raise SettingsError("unknown settings: " + "; ".join(unknown))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
