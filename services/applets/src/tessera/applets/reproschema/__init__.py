"""ReproSchema import and export: an applet from a ReproSchema protocol or activity, and an
applet as a ReproSchema bundle that imports back into the same applet.

No network access, ever: the ReproSchema 1.0.0 JSON-LD context is shipped in ``context/``
and read in place of any ReproSchema context URL; a reference outside the bundle is an
error, not a download. The reader is our own small reader of compact JSON-LD
(``jsonld.py``) rather than pyld/rdflib or the ``reproschema`` package (which brings pandas,
pyshacl and lxml and fetches its context from the network when validating).

Bundles (``bundle.py``): a zip of the JSON-LD files, or a JSON document ``{"root": path,
"files": {path: document}}``, or one self-contained document. Limits: 2000 files, 20 MB
unpacked, paths inside the bundle.

Mapping (ReproSchema -> applet; the export writes the same terms back):

- protocol ``prefLabel``, ``description``, ``landingPage`` (text files of the bundle) or
  ``about``, ``image`` -> ``display_name``, ``description``, ``about``, ``image``;
- ``ui.order`` -> activities and items, in order; ``ui.addProperties``: ``isVis: false`` ->
  ``is_hidden``, ``variableName`` -> the item's name (else its file name);
- activity ``prefLabel`` -> ``name``; ``description``; ``preamble`` -> a first ``message``
  item named ``preamble``; ``ui.allow`` skip (``AllowSkip``, ``skipped``, ``dontKnow``) ->
  ``is_skippable``;
- ``compute`` that sums or averages choice or slider items -> a score report, the items
  scored by their values; ``isVis`` that is all-of or any-of simple comparisons on earlier
  items (``phq9_1 > 0 || phq9_2 > 0``) -> ``conditional_logic``;
- ``question`` (every language) -> ``question``; ``radio``/``select`` (``multipleChoice``)
  -> ``singleSelect``/``multiSelect``, choices ``name``/``value``/``image`` -> options;
  ``slider`` -> ``slider`` (``minValue``/``maxValue``, end labels from the first and last
  choice); ``number`` with bounds -> ``numberSelect``, without -> numeric ``text``;
  ``text``/``textarea`` -> ``text``/``paragraphText`` (``maxLength``); ``date``, ``time``,
  ``timeRange``; ``static`` -> ``message`` (with an ``audio``: ``audioPlayer``);
  ``audioRecord`` and its variants -> ``audio`` (``maxValue`` in ms);
- ``valueRequired`` -> a text's ``response_required``, else not ``skippable`` (``false`` or
  ``allow`` skip: ``skippable``).

The types ReproSchema has no input for (rows of sliders or choices, geolocation, drawing,
photo, video, the performance tasks) are written with MindLogger's input names and
described by their ``tessera:item`` patch.

What has no place in an applet is listed in :attr:`Imported.unsupported` (unknown input
types, remote choices, other languages of a name, ``citation``, ``messages``...). What an
applet has that ReproSchema cannot say is exported under ``tessera:`` terms (``patch.py``).
"""

from __future__ import annotations

from tessera.applets.reproschema.assembly import assemble
from tessera.applets.reproschema.bundle import BundleError, load
from tessera.applets.reproschema.jsonld import context_file
from tessera.applets.reproschema.reader import Reader
from tessera.applets.reproschema.records import Imported, Unsupported
from tessera.applets.reproschema.writer import write_bundle, write_files

__all__ = [
    "BundleError",
    "Imported",
    "Unsupported",
    "context_file",
    "read_bundle",
    "write_bundle",
    "write_files",
]


def read_bundle(data: bytes, *, content_type: str, root: str | None = None) -> Imported:
    """The applet a ReproSchema bundle describes, and what of it could not be imported.

    ``content_type`` is ``application/zip`` or ``application/json``; ``root`` (a path in
    the bundle) picks the protocol or activity when a zip holds several. Raises
    :class:`BundleError` (a 422 problem naming the field) for anything that is not a
    readable bundle.
    """
    bundle = load(data, content_type=content_type, root=root)
    reader = Reader(bundle)
    record = reader.infer(bundle.root or reader.find_root())
    document = assemble(record, reader.note)
    return Imported(document, list(reader.notes))
