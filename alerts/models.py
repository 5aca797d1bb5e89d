"""Alerts for focal points: subscriptions, alerts with their history, and the outbox."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from alerts.rules import Rule, Severity
from alerts.webhook_addresses import validate_webhook_url
from countries.models import Country
from indicators.models import (
    RISK_SCORE_NUMBER_FIELDS,
    MethodologyVersion,
    Observation,
    ScoringRun,
)


class SeverityChoice(models.TextChoices):
    INFO = Severity.INFO.value, "Info"
    WARNING = Severity.WARNING.value, "Warning"
    CRITICAL = Severity.CRITICAL.value, "Critical"


class RuleChoice(models.TextChoices):
    LEVEL_CROSSING = Rule.LEVEL_CROSSING.value, "Level crossing"
    SURGE = Rule.SURGE.value, "Surge"
    RED_FLAG = Rule.RED_FLAG.value, "Red flag"


class CrimeType(models.TextChoices):
    OVERALL = "overall", "Any atrocity crime (overall)"
    GENOCIDE = "genocide", "Genocide"
    CRIMES_AGAINST_HUMANITY = "crimes_against_humanity", "Crimes against humanity"
    WAR_CRIMES = "war_crimes", "War crimes"


class AlertSettings(models.Model):
    """The editable alert thresholds and timings (a single row, pk=1)."""

    surge_points = models.FloatField(
        default=10.0, help_text="A rise of the overall score by this many points in 3 months."
    )
    surge_z = models.FloatField(
        default=2.0,
        help_text="...or a 3-month change this many standard deviations above "
        "the country's own history.",
    )
    red_flag_severity = models.FloatField(
        default=2 / 3, help_text="Observations on RF10, RF12 or 8.7 at or above this value."
    )
    escalation_hours = models.PositiveIntegerField(
        default=24,
        help_text="Critical alerts unacknowledged this long are re-sent and "
        "escalated to administrators, once per period.",
    )
    # 30 s doubling to a 1 h cap: attempt 31 comes about 24 h after the first, so an
    # outage of up to a day delays alerts but fails none of them.
    max_delivery_attempts = models.PositiveSmallIntegerField(
        default=31,
        help_text="Delivery attempts before a notification is marked failed (back-off 30 s "
        "doubling to 1 h; 31 attempts span about 24 h).",
    )
    red_flag_window_days = models.PositiveIntegerField(
        default=90,
        help_text="Observations dated longer ago than this count in scores but raise no "
        "red flag (imports of history).",
    )

    class Meta:
        verbose_name = verbose_name_plural = "alert settings"
        constraints = [
            models.CheckConstraint(condition=Q(surge_points__gt=0), name="alert_surge_points_gt_0"),
            models.CheckConstraint(
                condition=Q(red_flag_severity__gt=0) & Q(red_flag_severity__lte=1),
                name="alert_red_flag_severity_0_1",
            ),
            models.CheckConstraint(
                condition=Q(escalation_hours__gt=0), name="alert_escalation_hours_gt_0"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"surge {self.surge_points:g} points or z {self.surge_z:g}; "
            f"escalate after {self.escalation_hours} h"
        )


class Subscription(models.Model):
    """What a focal point covers, how severe an alert must be, and how it is delivered."""

    class Delivery(models.TextChoices):
        IMMEDIATE = "immediate", "Immediate e-mail"
        DIGEST = "digest", "Daily digest"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_subscriptions"
    )
    all_countries = models.BooleanField(default=False, help_text="Cover every country.")
    countries = models.ManyToManyField(Country, blank=True, related_name="subscriptions")
    regions = models.JSONField(
        default=list, blank=True, help_text="UN M49 region or sub-region names covered."
    )
    min_severity = models.CharField(
        max_length=10, choices=SeverityChoice.choices, default=SeverityChoice.WARNING
    )
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)
    webhook_url = models.URLField(
        blank=True,
        validators=[validate_webhook_url],
        help_text="Also post each alert as signed JSON to this URL (chat, ticketing); "
        "public internet addresses only.",
    )
    webhook_secret = models.CharField(max_length=64, blank=True, editable=False)
    weekly_summary = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user", "pk"]

    def __str__(self) -> str:
        scope = "all countries" if self.all_countries else ", ".join(self.regions) or "countries"
        return f"{self.user} · {scope} · {self.min_severity}+"

    @staticmethod
    def new_webhook_secret() -> str:
        return secrets.token_hex(32)


class Alert(models.Model):
    """An escalation a focal point must see; one active alert per (country, rule, crime type).

    Lifecycle: open -> acknowledged -> resolved, or dismissed with a reason. A further
    rise of an active alert escalates it (and reopens an acknowledged one) instead of
    opening a duplicate.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"

    ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)

    country = models.ForeignKey(Country, on_delete=models.PROTECT, related_name="alerts")
    rule = models.CharField(max_length=20, choices=RuleChoice.choices)
    crime_type = models.CharField(max_length=30, choices=CrimeType.choices)
    severity = models.CharField(max_length=10, choices=SeverityChoice.choices)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.OPEN)
    summary = models.TextField()
    period = models.DateField(help_text="The month end (or observation date) it is about.")
    # The numbers that raised it (latest escalation).
    score = models.FloatField(null=True, blank=True)
    previous_score = models.FloatField(null=True, blank=True)
    level = models.CharField(max_length=20, blank=True)
    previous_level = models.CharField(max_length=20, blank=True)
    change_3m = models.FloatField(null=True, blank=True)
    change_3m_z = models.FloatField(null=True, blank=True)
    drivers = models.JSONField(
        default=list, blank=True, help_text="[[factor, change in points], ...] biggest first."
    )
    drivers_crime = models.CharField(
        max_length=30, blank=True, help_text="The crime type the drivers' changes are taken in."
    )
    crime_switch = models.JSONField(
        null=True,
        blank=True,
        help_text='{"from": crime, "to": crime, "change": points} when the overall score '
        "changed crime type in between.",
    )
    compared_with = models.CharField(
        max_length=30,
        blank=True,
        help_text="What the previous score is: the previous published score "
        "(previous_published) or that of three months earlier (three_months_earlier).",
    )
    baseline_period = models.DateField(
        null=True, blank=True, help_text="The month end of the score it is compared with."
    )
    indicator = models.CharField(max_length=10, blank=True)
    value = models.FloatField(null=True, blank=True)
    red_flags = models.JSONField(
        default=list,
        blank=True,
        help_text="The assessments a red flag holds, one per indicator (the highest, then "
        "newest): [{indicator, name, value, observed_on, observation, source, dataset}].",
    )
    run = models.ForeignKey(
        ScoringRun, on_delete=models.PROTECT, null=True, blank=True, related_name="alerts"
    )
    observation = models.ForeignKey(
        Observation, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    opened_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_count = models.PositiveIntegerField(default=0)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolution_note = models.TextField(blank=True)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    dismissal_reason = models.TextField(blank=True)
    last_reminder_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When an unacknowledged critical alert was last "
        "re-sent and escalated to administrators.",
    )

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "rule", "crime_type"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="alert_one_active_per_country_rule_crime",
            ),
            models.CheckConstraint(
                condition=~Q(status="dismissed") | ~Q(dismissal_reason=""),
                name="alert_dismissal_needs_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "-opened_at"])]

    def __str__(self) -> str:
        return f"{self.get_severity_display()} {self.rule} {self.country_id}: {self.summary[:60]}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def level_label(self) -> str:
        return self.level.replace("_", " ")

    @property
    def change(self) -> float | None:
        """The rise this alert reports, in points: score minus previous score."""
        if self.score is None or self.previous_score is None:
            return None
        return self.score - self.previous_score

    @property
    def previous_level_label(self) -> str:
        return self.previous_level.replace("_", " ")


class AlertEvent(models.Model):
    """The alert's history: every escalation, transition, note, reminder and delivery failure."""

    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        ESCALATED = "escalated", "Escalated"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        DISMISSED = "dismissed", "Dismissed"
        NOTE = "note", "Note"
        REMINDED = "reminded", "Re-sent and escalated to administrators"
        DELIVERY_FAILED = "delivery_failed", "Delivery failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    message = models.TextField(blank=True)
    run = models.ForeignKey(ScoringRun, on_delete=models.SET_NULL, null=True, blank=True)
    observation = models.ForeignKey(Observation, on_delete=models.SET_NULL, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M}"


class AlertMessage(models.Model):
    """What one event tells the focal points about one country, sent once to each.

    An event is a scoring run, a batch of recorded observations, or a reminder round:
    every alert it opened or escalated for the country is one item of the message, most
    urgent first, so that a focal point gets one e-mail per country and event listing
    every trigger. Each item keeps the alert's escalation count when the message was
    made: its acknowledgement link acknowledges only alerts that have not risen since.
    """

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert"
        REMINDER = "reminder", "Reminder (unacknowledged)"

    country = models.ForeignKey(Country, on_delete=models.CASCADE, related_name="alert_messages")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ALERT)
    severity = models.CharField(max_length=10, choices=SeverityChoice.choices)
    run = models.ForeignKey(
        ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    alerts = models.ManyToManyField("Alert", through="AlertMessageItem", related_name="messages")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.country_id} at {self.created_at:%Y-%m-%d %H:%M}"


class AlertMessageItem(models.Model):
    """One alert in a message, in the message's order, as it stood then."""

    message = models.ForeignKey(AlertMessage, on_delete=models.CASCADE, related_name="items")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="message_items")
    position = models.PositiveSmallIntegerField()
    escalation_count = models.PositiveIntegerField(
        help_text="The alert's escalation count when the message was made."
    )

    class Meta:
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "alert"], name="message_item_once"),
        ]

    def __str__(self) -> str:
        return f"Message {self.message_id} item {self.position}: alert {self.alert_id}"


class Notification(models.Model):
    """One delivery of one message to one recipient on one channel (the outbox).

    Pending while ``sent_at`` and ``failed_at`` are empty; a dispatcher claims a row
    with a conditional UPDATE on ``claimed_until`` so two dispatchers never send it
    twice. ``alert`` is its ``alert_message``'s first (most urgent) alert; ``round``
    counts re-sends of it (escalations, reminders). ``message_id`` is the e-mail's
    Message-ID header.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert"
        REMINDER = "reminder", "Reminder (unacknowledged)"
        ADMIN_ESCALATION = "admin_escalation", "Escalation to administrators"

    alert_message = models.ForeignKey(
        AlertMessage, on_delete=models.CASCADE, related_name="notifications"
    )
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_notifications"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ALERT)
    round = models.PositiveIntegerField(default=0)
    target = models.CharField(max_length=500, help_text="E-mail address or webhook URL.")
    webhook_secret = models.CharField(max_length=64, blank=True)
    message_id = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    ack_used_at = models.DateTimeField(
        null=True, blank=True, help_text="When its acknowledgement link was used (once)."
    )

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert_message", "recipient", "channel", "kind"],
                name="notification_once_per_message_recipient_channel",
            ),
        ]
        indexes = [models.Index(fields=["sent_at", "failed_at", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} ({self.status})"

    @property
    def status(self) -> str:
        if self.sent_at:
            return "sent"
        if self.failed_at:
            return "failed"
        return "retrying" if self.attempts else "pending"


class Digest(models.Model):
    """A daily digest or weekly summary for one user and one period, sent at most once."""

    class Kind(models.TextChoices):
        DAILY = "daily", "Daily digest"
        WEEKLY = "weekly", "Weekly summary"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_digests"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    alert_count = models.PositiveIntegerField(default=0)
    message_id = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField()
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it until then (a lease)."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "period_start"], name="digest_once_per_user_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.user} from {self.period_start:%Y-%m-%d}"


class RunEvaluation(models.Model):
    """Marks a scoring run as evaluated by the alert rules, so it is evaluated once."""

    run = models.OneToOneField(ScoringRun, on_delete=models.CASCADE, related_name="evaluation")
    evaluated_at = models.DateTimeField()
    escalations = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Run {self.run_id} evaluated: {self.escalations} escalation(s)"


# The score fields a baseline keeps of a run's latest period (besides its identity).
BASELINE_NUMBER_FIELDS = tuple(f for f in RISK_SCORE_NUMBER_FIELDS if f != "change_12m")


class ScoreBaseline(models.Model):
    """A country's latest-period scores as the alert rules last evaluated them.

    The next run of that country is compared with this row ("the previous published
    run"), then replaces it. Scores themselves are upserted in place, so the previous
    run's numbers would otherwise be gone by the time the new run is evaluated.
    """

    country = models.OneToOneField(Country, on_delete=models.CASCADE, related_name="alert_baseline")
    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="+")
    run_started_at = models.DateTimeField(help_text="An older run never replaces a newer one.")
    methodology = models.ForeignKey(
        MethodologyVersion,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="A run under another methodology version has no baseline here.",
    )
    period = models.DateField()
    overall = models.FloatField(null=True, blank=True)
    genocide = models.FloatField(null=True, blank=True)
    crimes_against_humanity = models.FloatField(null=True, blank=True)
    war_crimes = models.FloatField(null=True, blank=True)
    coverage = models.FloatField()
    coverage_genocide = models.FloatField(null=True, blank=True)
    coverage_crimes_against_humanity = models.FloatField(null=True, blank=True)
    coverage_war_crimes = models.FloatField(null=True, blank=True)
    change_3m = models.FloatField(null=True, blank=True)
    change_3m_z = models.FloatField(null=True, blank=True)
    overall_crime = models.CharField(max_length=30, blank=True)
    contributions = models.JSONField(default=dict, blank=True)
    factor_scores = models.JSONField(
        default=dict, blank=True, help_text="Kept to explain a later change per crime type."
    )
    evaluated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.country_id} baseline from run {self.run_id} ({self.period})"


class RedFlagCheck(models.Model):
    """Marks one version of an observation as checked by the red-flag rule.

    Keyed on the observation's ``updated_at``, so a value raised later is checked again
    while re-running a check changes nothing.
    """

    observation = models.ForeignKey(
        Observation, on_delete=models.CASCADE, related_name="red_flag_checks"
    )
    observation_updated_at = models.DateTimeField()
    checked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["observation", "observation_updated_at"],
                name="red_flag_check_once_per_observation_version",
            ),
        ]

    def __str__(self) -> str:
        return f"Observation {self.observation_id} checked at {self.checked_at:%Y-%m-%d %H:%M}"
