"""The ReproSchema terms this package reads and writes (each by every IRI it is known by),
and how ``ui.inputType`` maps to response types."""

from __future__ import annotations

from tessera.applets.reproschema.jsonld import RS, SCHEMA, SKOS, TESSERA

PROTOCOL = frozenset({RS + "Protocol"})
ACTIVITY = frozenset({RS + "Activity"})

PREF_LABEL = (SKOS + "prefLabel", RS + "prefLabel", SCHEMA + "prefLabel")
DESCRIPTION = (SCHEMA + "description", RS + "description")
ABOUT = (SCHEMA + "about", RS + "about")
LANDING_PAGE = (RS + "landingPage",)
IN_LANGUAGE = (SCHEMA + "inLanguage", RS + "inLanguage")
IMAGE = (SCHEMA + "image", RS + "image")
AUDIO = (SCHEMA + "audio", RS + "audio")
CONTENT_URL = (SCHEMA + "contentUrl", RS + "contentUrl")
PREAMBLE = (RS + "preamble", SCHEMA + "preamble")
QUESTION = (SCHEMA + "question", RS + "question")
ORDER = (RS + "order",)
ADD_PROPERTIES = (RS + "addProperties",)
SHUFFLE = (RS + "shuffle",)
ALLOW = (RS + "allow",)
INPUT_TYPE = (RS + "inputType",)
READONLY = (SCHEMA + "readonlyValue", RS + "readonlyValue")
IS_ABOUT = (RS + "isAbout",)
IS_VIS = (RS + "isVis",)
VARIABLE_NAME = (RS + "variableName",)
VALUE_REQUIRED = (SCHEMA + "valueRequired", RS + "valueRequired")
COMPUTE = (RS + "compute",)
JS_EXPRESSION = (RS + "jsExpression",)
RESPONSE_OPTIONS = (RS + "responseOptions",)
CHOICES = (RS + "choices",)
NAME = (SCHEMA + "name", RS + "name")
VALUE = (SCHEMA + "value", RS + "value")
MIN_VALUE = (SCHEMA + "minValue", RS + "minValue")
MAX_VALUE = (SCHEMA + "maxValue", RS + "maxValue")
MULTIPLE_CHOICE = (RS + "multipleChoice",)
VALUE_TYPE = (RS + "valueType",)
MAX_LENGTH = (RS + "maxLength", SCHEMA + "maxLength")
METADATA = (SCHEMA + "schemaVersion", SCHEMA + "version", "@type", "@id")
"""Read silently: they describe the document, not the questionnaire."""

EXT_APPLET = (TESSERA + "applet", "tessera:applet")
EXT_ACTIVITY = (TESSERA + "activity", "tessera:activity")
EXT_ITEM = (TESSERA + "item", "tessera:item")
EXT_APPLET_ID = (TESSERA + "appletId", "tessera:appletId")

SKIP_TOKENS = frozenset({"allowskip", "skipped", "dontknow"})
"""``allow`` values that let the respondent skip (``reproschema:AllowSkip``, ``skipped``...)."""

NUMERIC_TYPES = frozenset({"integer", "int", "decimal", "float", "double", "number"})

# inputType (case-insensitive) -> response type; the notes say what is lost on the way.
INPUT_TYPES: dict[str, str] = {
    "text": "text",
    "textarea": "paragraphText",
    "multitext": "paragraphText",
    "radio": "select",
    "select": "select",
    "checkbox": "select",
    "slider": "slider",
    "number": "number",
    "float": "number",
    "ageselector": "number",
    "date": "date",
    "year": "date",
    "time": "time",
    "timerange": "timeRange",
    "static": "message",
    "markdownmessage": "message",
    "audiostimulus": "audioPlayer",
    "audiorecord": "audio",
    "audioimagerecord": "audio",
    "audiopassagerecord": "audio",
    "audiorecordnumbertask": "audio",
    "audiorecordaudiotask": "audio",
    "audiorecordnostop": "audio",
    "audioautorecord": "audio",
    "stackedslider": "sliderRows",
    "stackedradio": "singleSelectRows",
    "stackedcheckbox": "multiSelectRows",
    "geolocation": "geolocation",
    "drawing": "drawing",
    "photo": "photo",
    "video": "video",
    "flanker": "flanker",
    "stabilitytracker": "stabilityTracker",
    "abtrails": "ABTrails",
    "email": "text",
    "pid": "text",
    "selectcountry": "text",
    "selectstate": "text",
    "selectlanguage": "text",
}

INPUT_NOTES: dict[str, str] = {
    "float": "read as a numeric text answer (decimals are not checked)",
    "year": "read as a date (the respondent picks a whole date)",
    "multitext": "read as one paragraph text (not separate boxes)",
    "audioimagerecord": "read as an audio recording; the image shown is not kept",
    "audiorecordnumbertask": "read as an audio recording; the number task is not kept",
    "audiorecordaudiotask": "read as an audio recording; the audio task is not kept",
    "email": "read as a text answer (not checked as an e-mail address)",
    "pid": "read as a text answer",
    "selectcountry": "read as a text answer (no built-in list of countries)",
    "selectstate": "read as a text answer (no built-in list of states)",
    "selectlanguage": "read as a text answer (no built-in list of languages)",
}

WRITTEN_INPUT_TYPES: dict[str, str] = {
    "text": "text",
    "paragraphText": "textarea",
    "singleSelect": "radio",
    "multiSelect": "radio",
    "slider": "slider",
    "numberSelect": "number",
    "date": "date",
    "time": "time",
    "timeRange": "timeRange",
    "sliderRows": "stackedSlider",
    "singleSelectRows": "stackedRadio",
    "multiSelectRows": "stackedCheckbox",
    "geolocation": "geolocation",
    "drawing": "drawing",
    "photo": "photo",
    "video": "video",
    "audio": "audioRecord",
    "audioPlayer": "static",
    "message": "static",
    "flanker": "flanker",
    "stabilityTracker": "stabilityTracker",
    "ABTrails": "ABTrails",
}
"""The inputType an export writes for each response type (an ``audioPlayer`` is a
``static`` item with an ``audio``; the types ReproSchema has no input for keep MindLogger's
names and are described by ``tessera:item``)."""

AUTO_SCORED = frozenset({"singleSelect", "multiSelect", "slider"})
"""Response types whose scores an import can take from the values (score = value)."""
