"""Mass-killing episodes (the Early Warning Project's list, episodes begun by 2014).

One file, three uses: the episode records (``episodes``), the yearly histories that
inform indicators (``read``), and the backtest's outcomes (an onset is the start year of
an episode, located by its location code).

An episode's country is its location (``mk_location_cow``) mapped like every COW code;
where that is a state we do not score (South Vietnam, South Yemen, Zanzibar), its first
inheritor (``mk_location_inheritor1``) is used. Each rule is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from indicators.sources.base import Panel, SourceFormatError, SourceTable, read_csv, require_years
from indicators.sources.codes import CountryCodes, UnknownCodeError, Unmapped

COLUMNS = (
    "country",
    "mk_event_code",
    "mk_event_name",
    "startyear",
    "endyear",
    "ongoing_at_end_of_2014",
    "State-Led or Non-State-Led",
    "mk_number_eth_groups",
    "mk_location_cow",
    "mk_location_inheritor1",
)
RECENT_YEARS = 10
# History codes: 0 none since 1945, 1 earlier, 2 ended within RECENT_YEARS, 3 under way.
NONE, EARLIER, RECENT, ONGOING = 0, 1, 2, 3


@dataclass(frozen=True)
class Episode:
    code: str
    iso3: str
    name: str
    start_year: int
    end_year: int | None
    ongoing_at_end: bool
    state_led: bool | None
    ethnic_groups_targeted: int | None
    location_note: str
    """How the location became our country, when a rule was needed."""


@dataclass(frozen=True)
class EpisodeFile:
    episodes: list[Episode]
    last_year: int
    """The last start year the file covers (its episodes began by then)."""
    rows_read: int
    unmapped: list[Unmapped]


def read_episodes(path: Path, *, codes: CountryCodes) -> EpisodeFile:
    """Every episode of the file, located in one of our countries.

    Raises ``SourceFormatError`` for a missing column, a bad number, a repeated event
    code or an end before the start.
    """
    frame = read_csv(
        path,
        columns=COLUMNS,
        numeric=("mk_number_eth_groups",),
        integer=(
            "startyear",
            "endyear",
            "ongoing_at_end_of_2014",
            "mk_location_cow",
            "mk_location_inheritor1",
        ),
    )
    require_years(path, frame, "startyear")
    codes_seen = frame["mk_event_code"].str.strip()
    if (codes_seen == "").any():
        raise SourceFormatError(
            f"{path.name}: row {frame.index[codes_seen == ''][0]} has no mk_event_code."
        )
    repeated = codes_seen[codes_seen.duplicated()]
    if len(repeated):
        raise SourceFormatError(
            f"{path.name}: row {repeated.index[0]} repeats the event code {repeated.iloc[0]!r}."
        )
    episodes: list[Episode] = []
    unmapped: dict[tuple[str, str], int] = {}
    for row, record in frame.iterrows():
        start = int(record["startyear"])
        end = None if pd.isna(record["endyear"]) else int(record["endyear"])
        if end is not None and end < start:
            raise SourceFormatError(
                f"{path.name}: row {row}: endyear {end} is before startyear {start}."
            )
        try:
            iso3, reason = codes.lookup("cow", record["mk_location_cow"], start)
            note = ""
            if iso3 is None:
                inheritor, _ = codes.lookup("cow", record["mk_location_inheritor1"], start)
                if inheritor is None:
                    inheritor, _ = codes.lookup("cow", record["mk_location_inheritor1"], 2014)
                note = f"located in its inheritor: {reason}" if inheritor else ""
                iso3 = inheritor
        except UnknownCodeError as exc:
            raise SourceFormatError(f"{path.name}: row {row}: {exc}.") from exc
        if iso3 is None:
            key = (str(int(record["mk_location_cow"])), reason)
            unmapped[key] = unmapped.get(key, 0) + 1
            continue
        led = str(record["State-Led or Non-State-Led"]).strip().lower()
        groups = record["mk_number_eth_groups"]
        episodes.append(
            Episode(
                code=str(record["mk_event_code"]).strip(),
                iso3=iso3,
                name=" ".join(str(record["mk_event_name"]).split()),
                start_year=start,
                end_year=end,
                ongoing_at_end=bool(record["ongoing_at_end_of_2014"] == 1),
                state_led={"state-led": True, "non-state-led": False}.get(led),
                ethnic_groups_targeted=None if pd.isna(groups) else int(groups),
                location_note=note,
            )
        )
    return EpisodeFile(
        episodes=episodes,
        last_year=int(frame["startyear"].max()),
        rows_read=len(frame),
        unmapped=[
            Unmapped("cow", code, reason, n) for (code, reason), n in sorted(unmapped.items())
        ],
    )


def read(path: Path, *, codes: CountryCodes, panel: Panel, last_year: int) -> SourceTable:
    """Yearly histories per panel country, 1945 to ``last_year``.

    ``mass_killing_history`` and ``ethnic_mass_killing_history`` (episodes targeting
    one or more ethnic groups) are coded 0 none since 1945, 1 earlier, 2 ended within
    ten years, 3 under way; ``mass_killing_ongoing`` is 1 while one is under way, and is
    given only for years the file can speak for (to its last start year). An episode
    still under way when the file ends counts as "ended within ten years" in every later
    year: the file does not say whether or when it ended, so it never fades to "earlier".
    """
    found = read_episodes(path, codes=codes)
    grid = panel.fill(pd.DataFrame(columns=["iso3", "year"]), first=1945, last=last_year)
    grid = grid[["iso3", "year"]].astype({"year": int})
    for column in ("mass_killing_history", "ethnic_mass_killing_history", "mass_killing_ongoing"):
        grid[column] = 0.0
    grid.loc[grid["year"] > found.last_year, "mass_killing_ongoing"] = float("nan")
    position = {key: i for i, key in enumerate(zip(grid["iso3"], grid["year"], strict=True))}
    history = grid["mass_killing_history"].to_numpy()
    ethnic = grid["ethnic_mass_killing_history"].to_numpy()
    ongoing = grid["mass_killing_ongoing"].to_numpy()
    for episode in found.episodes:
        end = episode.end_year if episode.end_year is not None else found.last_year
        for year in panel.years_of(episode.iso3) or range(1945, last_year + 1):
            if year < episode.start_year or (episode.iso3, year) not in position:
                continue
            if year <= end and (episode.end_year is not None or year <= found.last_year):
                code = ONGOING
            elif year - end <= RECENT_YEARS or episode.end_year is None:
                code = RECENT
            else:
                code = EARLIER
            i = position[(episode.iso3, year)]
            history[i] = max(history[i], code)
            if episode.ethnic_groups_targeted:
                ethnic[i] = max(ethnic[i], code)
            if code == ONGOING and year <= found.last_year:
                ongoing[i] = 1.0
    grid["mass_killing_history"] = history
    grid["ethnic_mass_killing_history"] = ethnic
    grid["mass_killing_ongoing"] = ongoing
    table = SourceTable(
        values=grid.reset_index(drop=True), rows_read=found.rows_read, unmapped=found.unmapped
    )
    outside = [e for e in found.episodes if e.iso3 not in panel.countries]
    if outside:
        table.skipped["episodes in countries outside the panel (histories not computed)"] += len(
            outside
        )
    return table
