"""Every response type an item can have, each with its own values and config.

An item is a tagged union on ``response_type``: ``{"response_type": "slider",
"response_values": {...}, "config": {...}}`` validates ``response_values`` with
:class:`SliderValues` and ``config`` with :class:`SliderConfig`, so a wrong field is a 422
whose location names it (``activities.0.items.3.slider.response_values.max_value``). Unknown
fields are refused everywhere: a typo in an editor is an error, not a silently dropped
setting. Types that take no values (text, date, the performance tasks...) refuse any.

The rules that need more than one item (conditional logic, scores and reports) are in
``logic.py``.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

__all__ = [
    "OPTION_TYPES",
    "ROW_OPTION_TYPES",
    "SCORABLE_TYPES",
    "Condition",
    "ConditionalLogic",
    "Item",
    "Localized",
    "Operator",
    "ResponseType",
    "Url",
    "drop_read_only",
    "item_is_scored",
]


class Strict(BaseModel):
    """Refuses fields it does not know, and never changes once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _languages(value: dict[str, str]) -> dict[str, str]:
    for tag, text in value.items():
        if not _LANGUAGE.match(tag):
            raise ValueError(f"{tag!r} is not a language tag (en, fr, pt-BR...)")
        if len(text) > 20_000:
            raise ValueError(f"the {tag} text is longer than 20000 characters")
    return value


Localized = Annotated[
    dict[str, str],
    Field(max_length=50, description='text by language: {"en": "...", "fr": "..."}'),
    AfterValidator(_languages),
]


def _url(value: str) -> str:
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", value, re.IGNORECASE):
        raise ValueError("must be an http(s) URL")
    return value


Url = Annotated[str, Field(max_length=2048), AfterValidator(_url)]
Color = Annotated[str, Field(pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$", description="#rrggbb")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
ShortText = Annotated[str, Field(max_length=500)]


class ResponseType(StrEnum):
    text = "text"
    paragraph_text = "paragraphText"
    single_select = "singleSelect"
    multi_select = "multiSelect"
    slider = "slider"
    number_select = "numberSelect"
    date = "date"
    time = "time"
    time_range = "timeRange"
    slider_rows = "sliderRows"
    single_select_rows = "singleSelectRows"
    multi_select_rows = "multiSelectRows"
    geolocation = "geolocation"
    drawing = "drawing"
    photo = "photo"
    video = "video"
    audio = "audio"
    audio_player = "audioPlayer"
    message = "message"
    flanker = "flanker"
    stability_tracker = "stabilityTracker"
    ab_trails = "ABTrails"


# --- config shared by most screens ------------------------------------------------------------


class AdditionalResponse(Strict):
    """A free-text box under the answer ("Other: ...")."""

    text_input_option: bool = False
    text_input_required: bool = False


class ScreenConfig(Strict):
    skippable: bool = False
    remove_back_button: bool = False
    timer_s: int | None = Field(default=None, ge=1, le=86_400, description="time limit")


class AnswerConfig(ScreenConfig):
    additional_response_option: AdditionalResponse = AdditionalResponse()


class ScoredConfig(AnswerConfig):
    add_scores: bool = False
    set_alerts: bool = False


class NoValues(Strict):
    """Types that take no ``response_values``."""


# --- text -------------------------------------------------------------------------------------


class TextConfig(ScreenConfig):
    max_response_length: int = Field(default=300, ge=1, le=10_000)
    response_required: bool = False
    numerical_response_required: bool = False
    correct_answer_required: bool = False
    correct_answer: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _correct_answer(self) -> TextConfig:
        if self.correct_answer_required and not self.correct_answer:
            raise ValueError("correct_answer is required when correct_answer_required is true")
        return self


class ParagraphTextConfig(ScreenConfig):
    max_response_length: int = Field(default=1_000, ge=1, le=50_000)
    response_required: bool = False


# --- selections -------------------------------------------------------------------------------


class Option(Strict):
    id: uuid.UUID | None = None
    text: Annotated[str, Field(min_length=1, max_length=500)]
    value: int = Field(ge=-1_000_000, le=1_000_000, description="what the answer records")
    score: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    alert: str | None = Field(default=None, max_length=1_000, description="told to staff")
    image: Url | None = None
    tooltip: str | None = Field(default=None, max_length=1_000)
    color: Color | None = None
    is_hidden: bool = False


def _unique(values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} appears twice")
        seen.add(value)


class SelectValues(Strict):
    options: list[Option] = Field(min_length=1, max_length=200)
    palette_name: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _distinct(self) -> SelectValues:
        _unique([o.value for o in self.options], "option value")
        _unique([o.id for o in self.options if o.id is not None], "option id")
        return self


class SelectConfig(ScoredConfig):
    randomize_options: bool = False
    add_tooltip: bool = False
    set_palette: bool = False


def _scores_for_every(options: list[Option], add_scores: bool, where: str) -> None:
    if add_scores and any(o.score is None for o in options):
        missing = next(o.text for o in options if o.score is None)
        raise ValueError(f"add_scores is on: option {missing!r} {where}has no score")


# --- sliders and numbers ----------------------------------------------------------------------


class SliderAlert(Strict):
    """An alert when the answer is ``value``, or lies within ``min_value``..``max_value``."""

    value: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    message: Annotated[str, Field(min_length=1, max_length=1_000)]

    @model_validator(mode="after")
    def _one_form(self) -> SliderAlert:
        ranged = self.min_value is not None or self.max_value is not None
        if (self.value is None) == (not ranged) or (
            ranged and (self.min_value is None or self.max_value is None)
        ):
            raise ValueError("an alert has either value, or both min_value and max_value")
        low, high = self.min_value, self.max_value
        if low is not None and high is not None and low > high:
            raise ValueError("min_value is greater than max_value")
        return self


class SliderValues(Strict):
    min_value: int = Field(default=0, ge=-10_000, le=10_000)
    max_value: int = Field(default=10, ge=-10_000, le=10_000)
    min_label: str | None = Field(default=None, max_length=100)
    max_label: str | None = Field(default=None, max_length=100)
    min_image: Url | None = None
    max_image: Url | None = None
    scores: list[int] | None = Field(
        default=None, max_length=1_001, description="one per step from min_value to max_value"
    )
    alerts: list[SliderAlert] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _range(self) -> SliderValues:
        if self.min_value >= self.max_value:
            raise ValueError("min_value must be less than max_value")
        if self.max_value - self.min_value > 1_000:
            raise ValueError("a slider has at most 1001 steps")
        steps = self.max_value - self.min_value + 1
        if self.scores is not None and len(self.scores) != steps:
            raise ValueError(f"scores has {len(self.scores)} entries, the slider {steps} steps")
        for alert in self.alerts:
            for bound in (alert.value, alert.min_value, alert.max_value):
                if bound is not None and not self.min_value <= bound <= self.max_value:
                    raise ValueError(f"alert at {bound} is outside the slider's range")
        return self


class SliderConfig(ScoredConfig):
    show_tick_marks: bool = False
    show_tick_labels: bool = False
    continuous_slider: bool = False


class NumberSelectValues(Strict):
    min_value: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    max_value: int = Field(default=100, ge=-1_000_000, le=1_000_000)

    @model_validator(mode="after")
    def _range(self) -> NumberSelectValues:
        if self.min_value >= self.max_value:
            raise ValueError("min_value must be less than max_value")
        return self


class SliderRow(SliderValues):
    id: uuid.UUID | None = None
    label: Annotated[str, Field(min_length=1, max_length=100)]


class SliderRowsValues(Strict):
    rows: list[SliderRow] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _distinct(self) -> SliderRowsValues:
        _unique([r.label for r in self.rows], "row label")
        return self


class SliderRowsConfig(ScreenConfig):
    add_scores: bool = False
    set_alerts: bool = False


# --- grids of rows and options ----------------------------------------------------------------


class RowOption(Strict):
    id: uuid.UUID | None = None
    text: Annotated[str, Field(min_length=1, max_length=200)]
    value: int = Field(ge=-1_000_000, le=1_000_000)
    image: Url | None = None
    tooltip: str | None = Field(default=None, max_length=1_000)


class SelectRow(Strict):
    id: uuid.UUID | None = None
    row_name: Annotated[str, Field(min_length=1, max_length=200)]
    row_image: Url | None = None
    tooltip: str | None = Field(default=None, max_length=1_000)


class CellAlert(Strict):
    row: int = Field(ge=0, description="index of the row")
    option_value: int
    message: Annotated[str, Field(min_length=1, max_length=1_000)]


class SelectRowsValues(Strict):
    rows: list[SelectRow] = Field(min_length=1, max_length=50)
    options: list[RowOption] = Field(min_length=1, max_length=50)
    scores: list[list[int]] | None = Field(
        default=None, description="a score per row (outer) and option (inner)"
    )
    alerts: list[CellAlert] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _grid(self) -> SelectRowsValues:
        _unique([r.row_name for r in self.rows], "row")
        _unique([o.value for o in self.options], "option value")
        if self.scores is not None and (
            len(self.scores) != len(self.rows)
            or any(len(row) != len(self.options) for row in self.scores)
        ):
            raise ValueError(f"scores must be {len(self.rows)} rows of {len(self.options)} scores")
        values = {o.value for o in self.options}
        for alert in self.alerts:
            if alert.row >= len(self.rows) or alert.option_value not in values:
                raise ValueError(
                    f"alert on row {alert.row}, option {alert.option_value}: no such cell"
                )
        return self


class SelectRowsConfig(ScreenConfig):
    add_scores: bool = False
    set_alerts: bool = False
    add_tooltip: bool = False


# --- media ------------------------------------------------------------------------------------


class DrawingValues(Strict):
    drawing_example: Url | None = None
    drawing_background: Url | None = None


class DrawingConfig(AnswerConfig):
    remove_undo_button: bool = False
    navigation_to_top: bool = False


class AudioValues(Strict):
    max_duration_s: int = Field(default=300, ge=1, le=3_600)


class AudioPlayerValues(Strict):
    file: Url


class AudioPlayerConfig(AnswerConfig):
    play_once: bool = False


class MessageConfig(Strict):
    remove_back_button: bool = False
    timer_s: int | None = Field(default=None, ge=1, le=86_400)


# --- performance tasks ------------------------------------------------------------------------


class Stimulus(Strict):
    id: Annotated[str, Field(min_length=1, max_length=100)]
    image: Url | None = None
    text: str | None = Field(default=None, max_length=200)
    value: int | None = Field(default=None, description="the button that is correct")
    weight: int | None = Field(default=None, ge=0)


class FlankerBlock(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    order: list[str] = Field(min_length=1, max_length=1_000, description="stimulus ids")


class FlankerButton(Strict):
    text: str | None = Field(default=None, max_length=100)
    image: Url | None = None
    value: int


class FixationScreen(Strict):
    value: str | None = Field(default=None, max_length=100)
    image: Url | None = None


class FlankerConfig(Strict):
    stimulus_trials: list[Stimulus] = Field(min_length=1, max_length=200)
    blocks: list[FlankerBlock] = Field(min_length=1, max_length=50)
    buttons: list[FlankerButton] = Field(min_length=1, max_length=2)
    trial_duration_ms: int = Field(ge=100, le=60_000)
    sampling_method: Literal["randomize-order", "fixed-order"] = "randomize-order"
    sample_size: int = Field(default=1, ge=1, le=1_000)
    block_type: Literal["practice", "test"] = "test"
    show_feedback: bool = False
    show_fixation: bool = False
    show_results: bool = False
    fixation_duration_ms: int | None = Field(default=None, ge=0, le=60_000)
    fixation_screen: FixationScreen | None = None
    minimum_accuracy: int | None = Field(default=None, ge=0, le=100)
    next_button: str | None = Field(default=None, max_length=100)
    is_first_practice: bool = False
    is_last_practice: bool = False
    is_last_test: bool = False

    @model_validator(mode="after")
    def _blocks_name_stimuli(self) -> FlankerConfig:
        _unique([s.id for s in self.stimulus_trials], "stimulus id")
        known = {s.id for s in self.stimulus_trials}
        for block in self.blocks:
            unknown = [s for s in block.order if s not in known]
            if unknown:
                raise ValueError(f"block {block.name!r} names unknown stimulus {unknown[0]!r}")
        return self


class StabilityTrackerConfig(Strict):
    user_input_type: Literal["gyroscope", "touch"]
    phase: Literal["practice", "test"]
    duration_minutes: float = Field(gt=0, le=60)
    lambda_slope: float = Field(ge=0, le=10)
    trials_number: int = Field(default=0, ge=0, le=1_000)
    max_off_target_time_s: int = Field(default=10, ge=0, le=600)
    num_test_trials: int = Field(default=10, ge=0, le=1_000)
    task_mode: Literal["pseudo_stair", "stair", "fixed"] = "pseudo_stair"
    tracking_dims: int = Field(default=2, ge=1, le=2)
    show_score: bool = True
    initial_lambda: float = Field(default=0.075, ge=0, le=10)
    show_preview: bool = True


class ABTrailsConfig(Strict):
    device_type: Literal["tablet", "mobile"]
    order_name: Literal["first", "second", "third", "fourth"]


# --- conditional logic (checked against the items it names in ``logic.py``) --------------------


class Operator(StrEnum):
    """What a condition tests; which ones fit depends on the response type it refers to."""

    equal_to_option = "EQUAL_TO_OPTION"
    not_equal_to_option = "NOT_EQUAL_TO_OPTION"
    includes_option = "INCLUDES_OPTION"
    not_includes_option = "NOT_INCLUDES_OPTION"
    equal_to_row_option = "EQUAL_TO_ROW_OPTION"
    not_equal_to_row_option = "NOT_EQUAL_TO_ROW_OPTION"
    includes_row_option = "INCLUDES_ROW_OPTION"
    not_includes_row_option = "NOT_INCLUDES_ROW_OPTION"
    greater_than = "GREATER_THAN"
    less_than = "LESS_THAN"
    equal = "EQUAL"
    not_equal = "NOT_EQUAL"
    between = "BETWEEN"
    outside_of = "OUTSIDE_OF"
    greater_than_slider_rows = "GREATER_THAN_SLIDER_ROWS"
    less_than_slider_rows = "LESS_THAN_SLIDER_ROWS"
    equal_to_slider_rows = "EQUAL_TO_SLIDER_ROWS"
    not_equal_to_slider_rows = "NOT_EQUAL_TO_SLIDER_ROWS"
    between_slider_rows = "BETWEEN_SLIDER_ROWS"
    outside_of_slider_rows = "OUTSIDE_OF_SLIDER_ROWS"
    greater_than_date = "GREATER_THAN_DATE"
    less_than_date = "LESS_THAN_DATE"
    equal_to_date = "EQUAL_TO_DATE"
    not_equal_to_date = "NOT_EQUAL_TO_DATE"
    between_dates = "BETWEEN_DATES"
    outside_of_dates = "OUTSIDE_OF_DATES"
    greater_than_time = "GREATER_THAN_TIME"
    less_than_time = "LESS_THAN_TIME"
    equal_to_time = "EQUAL_TO_TIME"
    not_equal_to_time = "NOT_EQUAL_TO_TIME"
    between_times = "BETWEEN_TIMES"
    outside_of_times = "OUTSIDE_OF_TIMES"
    greater_than_time_range = "GREATER_THAN_TIME_RANGE"
    less_than_time_range = "LESS_THAN_TIME_RANGE"
    equal_to_time_range = "EQUAL_TO_TIME_RANGE"
    not_equal_to_time_range = "NOT_EQUAL_TO_TIME_RANGE"
    between_times_range = "BETWEEN_TIMES_RANGE"
    outside_of_times_range = "OUTSIDE_OF_TIMES_RANGE"
    equal_to_score = "EQUAL_TO_SCORE"


class Condition(Strict):
    """``item`` (an earlier item's name; in a report section also a score or a score
    condition id) tested with ``type``; ``payload`` holds the operands, checked in
    ``logic.py`` against the item it names (``{"option_value": 2}``, ``{"value": 3}``,
    ``{"min_value": 1, "max_value": 4}``, ``{"date": "2026-01-31"}``, ``{"time": "08:30"}``,
    ``{"row": 0, ...}`` for grids, ``{"field": "start_time", ...}`` for time ranges)."""

    item: Annotated[str, Field(min_length=1, max_length=100)]
    type: Operator
    payload: dict[str, Any] = Field(default_factory=dict, max_length=5)


class ConditionalLogic(Strict):
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=50)


# --- the item: one class per response type ----------------------------------------------------


def drop_read_only(data: Any, *names: str) -> Any:
    """What GET answers may be sent back as it is: its read-only fields are dropped here
    (the position in a list is the order; ids and versions are the server's)."""
    if isinstance(data, dict) and any(name in data for name in names):
        return {k: v for k, v in data.items() if k not in names}
    return data


READ_ONLY_ORDER = "read-only: the position in its list is the order"


class _ItemBase(Strict):
    id: uuid.UUID | None = Field(default=None, description="kept from version to version")
    order: int | None = Field(default=None, ge=0, description=READ_ONLY_ORDER)
    name: Annotated[
        str,
        Field(
            min_length=1,
            max_length=100,
            pattern=r"^[^\s\x00-\x1f][^\x00-\x1f]*$",
            description="unique in its activity; conditions and scores refer to it",
        ),
    ]
    question: Localized = Field(default_factory=dict)
    is_hidden: bool = False
    allow_edit: bool = True
    conditional_logic: ConditionalLogic | None = Field(
        default=None, description="shown only when these conditions on earlier items hold"
    )

    @model_validator(mode="after")
    def _scores_when_added(self) -> _ItemBase:
        config = getattr(self, "config", None)
        if not getattr(config, "add_scores", False):
            return self
        values = getattr(self, "response_values", None)
        if isinstance(values, SelectValues):
            _scores_for_every(values.options, True, "")
        elif isinstance(values, SliderRowsValues):
            for row in values.rows:
                if row.scores is None:
                    raise ValueError(f"add_scores is on: row {row.label!r} has no scores")
        elif isinstance(values, SliderValues | SelectRowsValues) and values.scores is None:
            raise ValueError("add_scores is on: response_values.scores is missing")
        return self


class TextItem(_ItemBase):
    response_type: Literal["text"]
    response_values: None = Field(default=None, description="this type takes none")
    config: TextConfig = TextConfig()


class ParagraphTextItem(_ItemBase):
    response_type: Literal["paragraphText"]
    response_values: None = Field(default=None, description="this type takes none")
    config: ParagraphTextConfig = ParagraphTextConfig()


class SingleSelectItem(_ItemBase):
    response_type: Literal["singleSelect"]
    response_values: SelectValues
    config: SelectConfig = SelectConfig()


class MultiSelectItem(_ItemBase):
    response_type: Literal["multiSelect"]
    response_values: SelectValues
    config: SelectConfig = SelectConfig()


class SliderItem(_ItemBase):
    response_type: Literal["slider"]
    response_values: SliderValues = SliderValues()
    config: SliderConfig = SliderConfig()


class NumberSelectItem(_ItemBase):
    response_type: Literal["numberSelect"]
    response_values: NumberSelectValues = NumberSelectValues()
    config: AnswerConfig = AnswerConfig()


class DateItem(_ItemBase):
    response_type: Literal["date"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class TimeItem(_ItemBase):
    response_type: Literal["time"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class TimeRangeItem(_ItemBase):
    response_type: Literal["timeRange"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class SliderRowsItem(_ItemBase):
    response_type: Literal["sliderRows"]
    response_values: SliderRowsValues
    config: SliderRowsConfig = SliderRowsConfig()


class SingleSelectRowsItem(_ItemBase):
    response_type: Literal["singleSelectRows"]
    response_values: SelectRowsValues
    config: SelectRowsConfig = SelectRowsConfig()


class MultiSelectRowsItem(_ItemBase):
    response_type: Literal["multiSelectRows"]
    response_values: SelectRowsValues
    config: SelectRowsConfig = SelectRowsConfig()


class GeolocationItem(_ItemBase):
    response_type: Literal["geolocation"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class DrawingItem(_ItemBase):
    response_type: Literal["drawing"]
    response_values: DrawingValues = DrawingValues()
    config: DrawingConfig = DrawingConfig()


class PhotoItem(_ItemBase):
    response_type: Literal["photo"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class VideoItem(_ItemBase):
    response_type: Literal["video"]
    response_values: None = Field(default=None, description="this type takes none")
    config: AnswerConfig = AnswerConfig()


class AudioItem(_ItemBase):
    response_type: Literal["audio"]
    response_values: AudioValues = AudioValues()
    config: AnswerConfig = AnswerConfig()


class AudioPlayerItem(_ItemBase):
    response_type: Literal["audioPlayer"]
    response_values: AudioPlayerValues
    config: AudioPlayerConfig = AudioPlayerConfig()


class MessageItem(_ItemBase):
    response_type: Literal["message"]
    response_values: None = Field(default=None, description="this type takes none")
    config: MessageConfig = MessageConfig()


class FlankerItem(_ItemBase):
    response_type: Literal["flanker"]
    response_values: None = Field(default=None, description="this type takes none")
    config: FlankerConfig


class StabilityTrackerItem(_ItemBase):
    response_type: Literal["stabilityTracker"]
    response_values: None = Field(default=None, description="this type takes none")
    config: StabilityTrackerConfig


class ABTrailsItem(_ItemBase):
    response_type: Literal["ABTrails"]
    response_values: None = Field(default=None, description="this type takes none")
    config: ABTrailsConfig


Item = Annotated[
    TextItem
    | ParagraphTextItem
    | SingleSelectItem
    | MultiSelectItem
    | SliderItem
    | NumberSelectItem
    | DateItem
    | TimeItem
    | TimeRangeItem
    | SliderRowsItem
    | SingleSelectRowsItem
    | MultiSelectRowsItem
    | GeolocationItem
    | DrawingItem
    | PhotoItem
    | VideoItem
    | AudioItem
    | AudioPlayerItem
    | MessageItem
    | FlankerItem
    | StabilityTrackerItem
    | ABTrailsItem,
    Field(discriminator="response_type"),
]
"""An item of any response type; ``response_type`` picks which."""


OPTION_TYPES = frozenset({ResponseType.single_select, ResponseType.multi_select})
ROW_OPTION_TYPES = frozenset({ResponseType.single_select_rows, ResponseType.multi_select_rows})
SCORABLE_TYPES = frozenset(
    {
        ResponseType.single_select,
        ResponseType.multi_select,
        ResponseType.slider,
        ResponseType.slider_rows,
        ResponseType.single_select_rows,
        ResponseType.multi_select_rows,
    }
)


def item_is_scored(item: Any) -> bool:
    """Whether answers to ``item`` have a score (scores and reports may use only these)."""
    return ResponseType(item.response_type) in SCORABLE_TYPES and bool(item.config.add_scores)
