from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from countries.models import Country

DEFAULT_STALENESS_DAYS = 730


class CrimeGroup(models.TextChoices):
    """Which crime-specific scores a risk factor feeds: common factors feed all three."""

    COMMON = "common", "Common (all atrocity crimes)"
    GENOCIDE = "genocide", "Genocide"
    CRIMES_AGAINST_HUMANITY = "crimes_against_humanity", "Crimes against humanity"
    WAR_CRIMES = "war_crimes", "War crimes"


class RiskFactor(models.Model):
    """One of the 14 risk factors of the UN Framework of Analysis.

    Its weight is not here: weights belong to a methodology version.
    """

    number = models.PositiveSmallIntegerField(unique=True)
    code = models.CharField(max_length=8, unique=True)
    title = models.CharField(max_length=200)
    group = models.CharField(max_length=30, choices=CrimeGroup.choices)
    summary = models.TextField(blank=True)
    note = models.TextField(
        blank=True, help_text="Verification notes on the factor's indicator list."
    )

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"


class Indicator(models.Model):
    """An indicator of a risk factor; its code ("1.1") is the stable key used by every source."""

    class Verification(models.TextChoices):
        VERIFIED = "verified", "Verified against a transcription"
        PARTLY_VERIFIED = "partly_verified", "Partly verified"
        RECALLED = "recalled", "Recalled, not checked"

    code = models.CharField(max_length=10, unique=True)
    factor = models.ForeignKey(RiskFactor, on_delete=models.PROTECT, related_name="indicators")
    position = models.PositiveSmallIntegerField(
        default=0, help_text="Order within the factor (the number after the dot)."
    )
    label = models.TextField()
    verification = models.CharField(
        max_length=20, choices=Verification.choices, default=Verification.RECALLED
    )

    class Meta:
        ordering = ["factor__number", "position"]

    def __str__(self) -> str:
        return f"{self.code} {self.label[:60]}"


class DataSet(models.Model):
    """A public data set the importers read: where it comes from, its terms, its last import.

    Rows are written by ``import_public_data`` from the mapping file
    (``indicators/sources/mapping.yaml``); the files themselves stay in the data folder.
    """

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    short = models.CharField(max_length=40, help_text="Short name, used in source labels.")
    version = models.CharField(max_length=80)
    provider = models.CharField(max_length=200)
    licence = models.CharField(max_length=200)
    share_alike = models.BooleanField(
        default=False, help_text="Derived numbers must carry the same licence and attribution."
    )
    citation = models.TextField(blank=True)
    url = models.URLField(max_length=500, blank=True, help_text="Where to download it.")
    file_name = models.CharField(max_length=200)
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the file, the mapping and the importer at the last import.",
    )
    imported_at = models.DateTimeField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True, help_text="The last import's summary.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.short} {self.version}"


class Observation(models.Model):
    """A sourced severity value in [0, 1] for one indicator in one country on one date.

    Analysts' assessments have no ``dataset``; values derived from a public data set
    keep it with the ``variable`` and the ``raw_value`` they were computed from. An
    analyst's assessment that ``overrides_data`` replaces the data-derived values of the
    same country, indicator and date in the scores (see ``indicators/scoring.py``).
    """

    class Confidence(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    # No single-column index on country: the unique key and (country, observed_on) lead
    # with it, and every index slows the bulk writes of uploads and imports.
    country = models.ForeignKey(
        Country, on_delete=models.PROTECT, related_name="observations", db_index=False
    )
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="observations")
    observed_on = models.DateField()
    value = models.FloatField(help_text="Severity in [0, 1]; the analysts' 0-3 scale is /3.")
    confidence = models.CharField(
        max_length=10, choices=Confidence.choices, default=Confidence.MEDIUM
    )
    source = models.CharField(max_length=200)
    source_url = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="observations",
    )
    dataset = models.ForeignKey(
        DataSet, on_delete=models.PROTECT, null=True, blank=True, related_name="observations"
    )
    variable = models.CharField(
        max_length=60, blank=True, help_text="The data set's variable the value comes from."
    )
    raw_value = models.FloatField(
        null=True, blank=True, help_text="The variable's value before the transform to [0, 1]."
    )
    overrides_data = models.BooleanField(
        default=False,
        help_text="Replaces the data-derived values of this country, indicator and date.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["country", "indicator", "observed_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "indicator", "observed_on", "source"],
                name="observation_unique_per_source_and_date",
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0) & Q(value__lte=1), name="observation_value_0_1"
            ),
            models.CheckConstraint(
                condition=Q(dataset__isnull=True) | Q(overrides_data=False),
                name="observation_only_analysts_override",
            ),
        ]
        indexes = [models.Index(fields=["country", "observed_on"])]

    def __str__(self) -> str:
        return f"{self.country_id}/{self.indicator_id} {self.observed_on}: {self.value:.2f}"

    @property
    def from_data(self) -> bool:
        return self.dataset_id is not None


class MethodologyVersion(models.Model):
    """Every weight and threshold scores are computed under: one version of the method.

    A version is drafted (its weights edited through ``indicators.methodology``), then
    published with a written rationale (every score is recomputed under it and it
    becomes the one analysts see), and superseded when another is published. Scores of
    earlier versions stay stored and viewable. Only one version is published at a time.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PUBLISHED = "published", "Published"
        SUPERSEDED = "superseded", "Superseded"
        DISCARDED = "discarded", "Discarded"

    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    title = models.CharField(max_length=120, blank=True, help_text="A short name for it.")
    rationale = models.TextField(
        blank=True, help_text="Why these weights: required to publish, kept for the record."
    )
    based_on = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The version it was drafted from (what its changes are measured against).",
    )
    fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the weights and thresholds."
    )
    factor_weights = models.JSONField(help_text='{"RF1": 1.0, ...}')
    indicator_weights = models.JSONField(help_text='{"1.1": 1.0, ...}')
    staleness_days = models.JSONField(help_text='{"1.1": 730, ...}')
    thresholds = models.JSONField(help_text="Level thresholds and the coverage floor.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="published"),
                name="one_published_methodology",
            ),
        ]

    def __str__(self) -> str:
        return f"Methodology v{self.number}" + (f" ({self.title})" if self.title else "")

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class MethodologyEvent(models.Model):
    """The audit log of the methodology: who did what to which version, when and why."""

    class Kind(models.TextChoices):
        DRAFTED = "drafted", "Drafted"
        EDITED = "edited", "Edited"
        PREVIEW_REQUESTED = "preview_requested", "Preview requested"
        PREVIEWED = "previewed", "Previewed"
        PUBLISH_REQUESTED = "publish_requested", "Publication requested"
        PUBLISHED = "published", "Published"
        PUBLISH_FAILED = "publish_failed", "Publication failed"
        SUPERSEDED = "superseded", "Superseded"
        ROLLED_BACK = "rolled_back", "Rolled back to"
        DISCARDED = "discarded", "Discarded"
        CALIBRATED = "calibrated", "Calibration suggested"

    version = models.ForeignKey(MethodologyVersion, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    at = models.DateTimeField()
    note = models.TextField(blank=True, help_text="The rationale or reason given.")
    changes = models.JSONField(
        default=dict, blank=True, help_text="What changed: {section: {code: [old, new]}}."
    )
    moved = models.JSONField(
        default=list, blank=True, help_text="Countries whose latest score or level moved."
    )

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["version", "at"])]

    def __str__(self) -> str:
        return f"v{self.version.number} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class MethodologyJob(models.Model):
    """Work on a version a worker does: a preview, a publication or a calibration.

    The database is the queue: claimed with a conditional UPDATE and a lease, drained on
    commit and by the beat sweep, its outcome (figures or the error) kept on the row.
    """

    class Kind(models.TextChoices):
        PREVIEW = "preview", "Preview"
        PUBLISH = "publish", "Publication"
        CALIBRATE = "calibrate", "Calibration"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    version = models.ForeignKey(MethodologyVersion, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    requested_at = models.DateTimeField()
    note = models.TextField(blank=True, help_text="For a publication: its rationale.")
    claim = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [
            models.Index(
                fields=["requested_at"],
                condition=Q(status__in=["pending", "running"]),
                name="methodology_job_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of v{self.version.number} ({self.status})"


class ScoringRun(models.Model):
    """One execution of ``refresh_scores``: what it scored, with which weights, and how it went."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    methodology = models.ForeignKey(
        MethodologyVersion, on_delete=models.PROTECT, related_name="runs"
    )
    countries = models.JSONField(
        null=True, blank=True, help_text="ISO3 codes scored; empty means every country."
    )
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    period_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    observations_read = models.PositiveIntegerField(default=0)
    scores_written = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per step.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "-started_at"])]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status}, {self.methodology})"

    @property
    def is_full(self) -> bool:
        return not self.countries


class RiskLevel(models.TextChoices):
    INSUFFICIENT_DATA = "insufficient_data", "Insufficient data"
    LOW = "low", "Low"
    MODERATE = "moderate", "Moderate"
    HIGH = "high", "High"
    VERY_HIGH = "very_high", "Very high"


# RiskScore's numeric score fields, in the engine's column names: what a scoring run
# writes besides identity, level, overall crime and the per-factor dicts.
RISK_SCORE_NUMBER_FIELDS = (
    "overall",
    "genocide",
    "crimes_against_humanity",
    "war_crimes",
    "coverage",
    "coverage_genocide",
    "coverage_crimes_against_humanity",
    "coverage_war_crimes",
    "change_3m",
    "change_12m",
    "change_3m_z",
)


class RiskScore(models.Model):
    """A country's scores for one month-end under one methodology version.

    Rows are written per (methodology, country, period): a later run under the same
    weights replaces the values and points ``run`` at itself, while scores computed
    under earlier weights stay as they were.
    """

    # No single-column indexes on country and methodology: the composite indexes below
    # lead with them, and every index slows the bulk write of a full refresh.
    country = models.ForeignKey(
        Country, on_delete=models.CASCADE, related_name="risk_scores", db_index=False
    )
    period = models.DateField(help_text="The month end the score is as of.")
    methodology = models.ForeignKey(
        MethodologyVersion, on_delete=models.PROTECT, related_name="scores", db_index=False
    )
    # Read through (methodology, period): an index on run alone would only slow the writes.
    run = models.ForeignKey(
        ScoringRun, on_delete=models.PROTECT, related_name="scores", db_index=False
    )
    overall = models.FloatField(null=True, blank=True)
    genocide = models.FloatField(null=True, blank=True)
    crimes_against_humanity = models.FloatField(null=True, blank=True)
    war_crimes = models.FloatField(null=True, blank=True)
    overall_crime = models.CharField(
        max_length=30, blank=True, help_text="The crime type whose score is the overall score."
    )
    level = models.CharField(max_length=20, choices=RiskLevel.choices)
    coverage = models.FloatField(help_text="Share of indicator weight with data, in [0, 1].")
    # Per crime type, so that a crime-specific score can be flagged as thin on its own.
    # Null only for scores stored before these columns existed.
    coverage_genocide = models.FloatField(
        null=True, blank=True, help_text="Coverage of the genocide score, in [0, 1]."
    )
    coverage_crimes_against_humanity = models.FloatField(
        null=True,
        blank=True,
        help_text="Coverage of the crimes against humanity score, in [0, 1].",
    )
    coverage_war_crimes = models.FloatField(
        null=True, blank=True, help_text="Coverage of the war crimes score, in [0, 1]."
    )
    change_3m = models.FloatField(null=True, blank=True)
    change_12m = models.FloatField(null=True, blank=True)
    change_3m_z = models.FloatField(
        null=True, blank=True, help_text="3-month change against the country's own history."
    )
    factor_scores = models.JSONField(default=dict, help_text='{"RF1": 0.42, ...} in [0, 1].')
    contributions = models.JSONField(
        default=dict, help_text="Points each factor adds to the overall score."
    )

    class Meta:
        ordering = ["country", "period"]
        constraints = [
            # Leads with country, so it also serves a country's history under a version.
            models.UniqueConstraint(
                fields=["country", "methodology", "period"],
                name="risk_score_unique_per_methodology",
            ),
            models.CheckConstraint(
                condition=Q(coverage__gte=0) & Q(coverage__lte=1), name="risk_score_coverage_0_1"
            ),
            *(
                models.CheckConstraint(
                    condition=Q(**{f"{name}__isnull": True})
                    | (Q(**{f"{name}__gte": 0}) & Q(**{f"{name}__lte": 1})),
                    name=f"risk_score_{name}_0_1",
                )
                for name in (
                    "coverage_genocide",
                    "coverage_crimes_against_humanity",
                    "coverage_war_crimes",
                )
            ),
        ]
        indexes = [models.Index(fields=["methodology", "period"])]

    def __str__(self) -> str:
        return f"{self.country_id} {self.period}: {self.overall}"


class RecomputeRequest(models.Model):
    """Scores that must be recomputed, written in the same transaction as their cause.

    The database is the queue: a worker (on commit, and a beat sweep every minute)
    claims pending rows with a conditional UPDATE, recomputes once for all of them and
    marks them done, so neither a broker outage nor a killed request loses a recompute.
    ``country`` empty means every country (new weights, a public-data import).
    """

    country = models.ForeignKey(
        Country, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=100)
    requested_at = models.DateTimeField()
    claim = models.UUIDField(null=True, blank=True, help_text="The worker holding it.")
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="Its lease: after this another worker may take it."
    )
    done_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey(
        ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["requested_at"]
        indexes = [
            models.Index(
                fields=["requested_at"],
                condition=Q(done_at__isnull=True),
                name="recompute_request_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Recompute {self.country_id or 'all'} ({self.reason})"


class ObservationUpload(models.Model):
    """An analyst's assessment file (CSV or XLSX), stored and imported by a worker.

    The database is the queue: the upload is a row written by the request, claimed by a
    worker (on commit, and a beat sweep every minute) with a conditional UPDATE and a
    lease, and imported all or nothing. The row keeps what the analyst's progress page
    shows: status, timings, the file-level error or the per-row problems, and the counts.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Not imported"

    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="observation_uploads",
    )
    file_name = models.CharField(max_length=255)
    content = models.BinaryField(help_text="The file as uploaded; emptied once it is imported.")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64)
    dry_run = models.BooleanField(default=False, help_text="Check and count, record nothing.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    step = models.CharField(
        max_length=200, blank=True, help_text="What the worker is doing, for the progress page."
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claim = models.UUIDField(null=True, blank=True, help_text="The worker holding it.")
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="Its lease: after this another worker may take it."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveIntegerField(null=True, blank=True, help_text="Data rows read.")
    result = models.JSONField(
        default=dict, blank=True, help_text='{"created": 1, "updated": 0, "unchanged": 0, ...}'
    )
    error = models.TextField(blank=True, help_text="Why the file as a whole was not read.")
    problems = models.JSONField(
        default=list, blank=True, help_text='[{"row": 2, "field": "date", "message": ...}]'
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running"], finished_at__isnull=True)
                | Q(status__in=["succeeded", "failed"], finished_at__isnull=False),
                name="observation_upload_finished_when_done",
            )
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["pending", "running"]),
                name="observation_upload_unfinished",
            ),
            models.Index(fields=["uploaded_by", "-created_at"], name="observation_upload_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def recompute_reason(self) -> str:
        """The reason its recompute requests give, so that its page can follow them."""
        return f"upload {self.pk}"


class SituationProfile(models.Model):
    """A named weight overlay for a kind of situation, e.g. "election period".

    Its multipliers apply on top of the published version's weights for a country
    assigned to it; the result is shown beside the standard score, labelled, never
    instead of it.
    """

    name = models.CharField(max_length=80, unique=True)
    description = models.TextField(help_text="What situation it is for, and why these weights.")
    factor_multipliers = models.JSONField(
        default=dict, blank=True, help_text='{"RF8": 2.0}: the factor counts twice as much.'
    )
    indicator_multipliers = models.JSONField(
        default=dict, blank=True, help_text='{"8.8": 3.0}: the indicator counts three times.'
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProfileAssignment(models.Model):
    """A situation profile applied to one country for a span of time, with a reason."""

    profile = models.ForeignKey(
        SituationProfile, on_delete=models.PROTECT, related_name="assignments"
    )
    country = models.ForeignKey(
        Country, on_delete=models.CASCADE, related_name="profile_assignments"
    )
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True, help_text="Empty while it lasts.")
    justification = models.TextField(help_text="Why this country is in this situation.")
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["country", "-starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="profile_assignment_ends_after_start",
            ),
            models.CheckConstraint(
                condition=~Q(justification=""), name="profile_assignment_justified"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.profile} for {self.country_id} from {self.starts_on}"


class SituationScore(models.Model):
    """A country's score under a situation profile's overlay, for one month end."""

    assignment = models.ForeignKey(
        ProfileAssignment, on_delete=models.CASCADE, related_name="scores"
    )
    methodology = models.ForeignKey(MethodologyVersion, on_delete=models.CASCADE, related_name="+")
    period = models.DateField()
    overall = models.FloatField(null=True, blank=True)
    overall_crime = models.CharField(max_length=30, blank=True)
    level = models.CharField(max_length=20, choices=RiskLevel.choices)
    coverage = models.FloatField()

    class Meta:
        ordering = ["assignment", "period"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment", "methodology", "period"],
                name="situation_score_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assignment} {self.period}: {self.overall}"
