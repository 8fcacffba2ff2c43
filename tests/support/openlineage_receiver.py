#!/usr/bin/env python3
"""An OpenLineage HTTP receiver for the end-to-end tests.

Listens on 127.0.0.1 (port 0 unless given), prints its port on the first line
of stdout, and answers:

  POST /api/v1/lineage  parses the event with openlineage-python's own model
                        (event_v2.RunEvent and the generated facet classes,
                        whose attrs validators check run ids, event times and
                        required fields); every facet's `_schemaURL` must be
                        the one that model's class names. Appends one JSON line
                        to OUT: {"ok": true, "event": <the event>, "model":
                        <Serde.to_dict of the parsed model>} or {"ok": false,
                        "error": ..., "body": ...}. Answers 201, or 400 when
                        the event does not parse.
  POST /alerts          appends {"alert": <body>} to OUT, answers 200.

Usage: openlineage_receiver.py OUT [PORT]
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attr
from openlineage.client import event_v2 as ev
from openlineage.client.generated import (
    column_lineage_dataset,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    output_statistics_output_dataset,
    processing_engine_run,
    schema_dataset,
    symlinks_dataset,
)
from openlineage.client.generated.base import RunFacet
from openlineage.client.serde import Serde

LOCK = threading.Lock()


@attr.define
class InletKafkaRunFacet(RunFacet):
    """inlet's custom run facet, declared the way openlineage-python's docs
    declare custom facets."""

    offsets: list = attr.field()
    eventTimeSource: str = attr.field()  # noqa: N815
    bootstrapServers: str | None = attr.field(default=None)  # noqa: N815
    consumerGroup: str | None = attr.field(default=None)  # noqa: N815
    newestEventTime: str | None = attr.field(default=None)  # noqa: N815
    commit: dict | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return "https://raw.githubusercontent.com/inlet-data/inlet/main/lineage/spec/facets/InletKafkaRunFacet.json#/$defs/InletKafkaRunFacet"


def schema_field(f):
    return schema_dataset.SchemaDatasetFacetFields(
        name=f["name"],
        type=f.get("type"),
        description=f.get("description"),
        ordinal_position=f.get("ordinal_position"),
        fields=[schema_field(x) for x in f.get("fields", [])],
    )


def input_field(x):
    return column_lineage_dataset.InputField(
        namespace=x["namespace"],
        name=x["name"],
        field=x["field"],
        transformations=[column_lineage_dataset.Transformation(**t) for t in x.get("transformations", [])],
    )


BUILDERS = {
    "schema": lambda f: schema_dataset.SchemaDatasetFacet(fields=[schema_field(x) for x in f["fields"]], producer=f["_producer"]),
    "symlinks": lambda f: symlinks_dataset.SymlinksDatasetFacet(identifiers=[symlinks_dataset.Identifier(**i) for i in f["identifiers"]], producer=f["_producer"]),
    "version": lambda f: dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=f["datasetVersion"], producer=f["_producer"]),
    "outputStatistics": lambda f: output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=f.get("rowCount"), size=f.get("size"), fileCount=f.get("fileCount"), producer=f["_producer"]),
    "columnLineage": lambda f: column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={k: column_lineage_dataset.Fields(inputFields=[input_field(x) for x in v["inputFields"]]) for k, v in f["fields"].items()},
        producer=f["_producer"],
    ),
    "jobType": lambda f: job_type_job.JobTypeJobFacet(processingType=f["processingType"], integration=f["integration"], jobType=f.get("jobType"), producer=f["_producer"]),
    "errorMessage": lambda f: error_message_run.ErrorMessageRunFacet(message=f["message"], programmingLanguage=f["programmingLanguage"], producer=f["_producer"]),
    "processing_engine": lambda f: processing_engine_run.ProcessingEngineRunFacet(version=f["version"], name=f.get("name"), openlineageAdapterVersion=f.get("openlineageAdapterVersion"), producer=f["_producer"]),
    "inlet_kafka": lambda f: InletKafkaRunFacet(
        offsets=f["offsets"],
        eventTimeSource=f["eventTimeSource"],
        bootstrapServers=f.get("bootstrapServers"),
        consumerGroup=f.get("consumerGroup"),
        newestEventTime=f.get("newestEventTime"),
        commit=f.get("commit"),
        producer=f["_producer"],
    ),
}


def facets(d):
    out = {}
    for key, f in (d or {}).items():
        if key not in BUILDERS:
            raise ValueError(f"facet {key!r} is unknown to this receiver")
        model = BUILDERS[key](f)
        if f.get("_schemaURL") != model._schemaURL:
            raise ValueError(f"facet {key!r}: _schemaURL {f.get('_schemaURL')!r} is not openlineage-python's {model._schemaURL!r}")
        out[key] = model
    return out


def parse(e):
    if e.get("schemaURL") != ev.RunEvent._get_schema():
        raise ValueError(f"schemaURL {e.get('schemaURL')!r} is not {ev.RunEvent._get_schema()!r}")
    return ev.RunEvent(
        eventType=ev.RunState[e["eventType"]],
        eventTime=e["eventTime"],
        run=ev.Run(runId=e["run"]["runId"], facets=facets(e["run"].get("facets"))),
        job=ev.Job(namespace=e["job"]["namespace"], name=e["job"]["name"], facets=facets(e["job"].get("facets"))),
        inputs=[ev.InputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d.get("facets")), inputFacets=facets(d.get("inputFacets"))) for d in e.get("inputs", [])],
        outputs=[ev.OutputDataset(namespace=d["namespace"], name=d["name"], facets=facets(d.get("facets")), outputFacets=facets(d.get("outputFacets"))) for d in e.get("outputs", [])],
        producer=e["producer"],
    )


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/alerts":
            record = {"alert": json.loads(body)}
            code = 200
        elif self.path == "/api/v1/lineage":
            try:
                event = json.loads(body)
                model = parse(event)
                record = {"ok": True, "event": event, "model": Serde.to_dict(model), "authorization": self.headers.get("Authorization")}
                code = 201
            except Exception as e:  # noqa: BLE001
                record = {"ok": False, "error": f"{type(e).__name__}: {e}", "body": body.decode("utf-8", "replace")}
                code = 400
        else:
            self._reply(404)
            return
        with LOCK, open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self._reply(code)


if __name__ == "__main__":
    OUT = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
