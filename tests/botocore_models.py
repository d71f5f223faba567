"""botocore's JSON data (service models, endpoints, partitions) parsed once per test process.

botocore parses a data file anew for every ``Session``: each keeps its own loader, and the loader's cache is its
own. The suite makes sessions all the time: moto's mock resets boto3's default session for every test that uses
it, every local stack makes its own clients, and every ``aws.reset()`` drops the app's session. Parsing those
files (with an ``OrderedDict`` for every object) was a fifth of the suite's CPU (py-spy, every worker, only
the threads holding the GIL, 2026-12-06). Here a file is parsed once per process, for as long as it is
unchanged, and every loader gets the same parsed data.

That is what the clients of one ``Session`` already do, changes included: botocore writes into the data it
has loaded, and each write gives the same result every time. Traced over the whole suite (2026-12-06), the
only writes were botocore's own:

- the endpoint resolver fills in a region's entry in ``endpoints.json`` (``dnsSuffix``, ``partition``,
  ``endpointName`` and the service's defaults: ``regions.EndpointResolver._resolve``);
- the rule-set resolver names each partition of ``partitions.json`` (``format_partition_output``);
- S3's handler takes ``/{Bucket}`` off each operation's ``requestUri`` once
  (``handlers.remove_bucket_from_url_paths_from_model``);
- a service's ``sdk-extras`` file is merged into its model as it loads.

So a process sharing the data behaves as one session would. ``tests/test_botocore_models.py`` holds it to
botocore's own parse, and a client made on data other clients have used to requests equal to a fresh one's.

Only the test process installs this (``tests/conftest.py``); deployed, the app makes one session per Lambda
container."""
from __future__ import annotations

import os

from botocore.loaders import JSONFileLoader

BOTOCORE_LOAD_FILE = JSONFileLoader._load_file
_parsed: dict = {}


def load_file_once(self: JSONFileLoader, full_path: str, open_method):
    """``JSONFileLoader._load_file``, parsed once per file and version of it (its size and modification time)."""
    try:
        seen = os.stat(full_path)
    except OSError:
        return BOTOCORE_LOAD_FILE(self, full_path, open_method)  # not there: botocore says so (None)
    key = (full_path, open_method, seen.st_size, seen.st_mtime_ns)
    if key not in _parsed:
        _parsed[key] = BOTOCORE_LOAD_FILE(self, full_path, open_method)
    return _parsed[key]


def install() -> None:
    JSONFileLoader._load_file = load_file_once
