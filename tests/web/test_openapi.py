"""``GET /openapi.json``: a valid OpenAPI 3.1 document of exactly the routes the app serves."""

from __future__ import annotations

import re
import tomllib

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from integration.web import openapi as module
from tests.conftest import ROOT

PROBLEM = "application/problem+json"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
WIDGET = "/widget/amocrm/click-to-call"


@pytest.fixture
def document(http) -> dict:
    answer = http.get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    return answer.json


def documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}


def each_operation(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_it_is_a_valid_openapi_3_1_document(document, app):
    validate(document, cls=OpenAPIV31SpecValidator)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert document["openapi"] == "3.1.0"
    assert (document["info"]["title"], document["info"]["version"]) == ("vats-bridge", version)
    assert document["servers"][0]["url"] == app.extensions["vats"].settings.public_url


def test_every_route_is_documented_and_every_operation_is_served(document, app):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint == "root" or rule.endpoint.startswith("console."):
            continue  # pages for people (the README's "Console"), not the HTTP API
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        explicit = {"OPTIONS"} if not rule.provide_automatic_options else set()
        routes |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"} | (rule.methods & explicit)}
    assert ("/webhooks/click-to-call", "options") in routes and ("/openapi.json", "get") in routes
    assert documented(document) == routes


def test_every_declared_operation_is_served(app):
    declared = {
        (path, method)
        for path, item in module.operations(app.extensions["vats"].settings).items()
        for method in item
        if method in METHODS
    }
    assert declared == module.served_operations(app)


def test_every_operation_answers_its_errors_as_problem_json(document):
    for name, operation in each_operation(document):
        errors = {status: answer for status, answer in operation["responses"].items() if status[0] in "45"}
        assert any(status.startswith("4") for status in errors), name
        for status, answer in errors.items():
            assert set(answer["content"]) == {PROBLEM}, f"{name} {status}"
            assert answer["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}, f"{name} {status}"
        assert "Allow" in errors["405"]["headers"], name
        if operation.get("requestBody") and not name.startswith("OPTIONS"):
            assert "413" in errors, name


def test_limited_answers_say_when_to_retry(document):
    limited = [operation for _, operation in each_operation(document) if "429" in operation["responses"]]
    assert limited
    for operation in limited:
        assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True


def test_each_operation_names_its_authentication(document):
    schemes = document["components"]["securitySchemes"]
    assert {schemes[name]["name"] for name in ("webhookId", "webhookTimestamp", "webhookSignature")} == {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
    assert (schemes["apiToken"]["type"], schemes["apiToken"]["scheme"]) == ("http", "bearer")
    token = schemes["amocrmOneTimeToken"]
    assert (token["type"], token["in"], token["name"]) == ("apiKey", "header", "X-Auth-Token")
    for name, operation in each_operation(document):
        path = name.split(" ", 1)[1]
        expected = {
            "POST /webhooks/click-to-call": module.SIGNED,
            "POST /webhooks/events": module.SIGNED,
            f"POST {WIDGET}": module.ONE_TIME_TOKEN,
        }.get(name, module.BEARER if path.startswith("/api/") else [])
        assert operation["security"] == expected, name
    assert "auth[application_token]" in document["paths"]["/webhooks/bitrix24"]["post"]["description"]
    secret = document["paths"]["/webhooks/amocrm/{secret}"]["parameters"][0]
    assert "AMOCRM_WEBHOOK_SECRET" in secret["description"]


def test_examples_fit_their_schemas(document):
    """Every example of a body or an answer validates against the schema beside it."""
    registry = Registry().with_resource("urn:doc", Resource.from_contents(document, DRAFT202012))
    checked = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            media = [("requestBody", operation.get("requestBody", {}))]
            media += [(f"responses/{status}", answer) for status, answer in operation["responses"].items()]
            for where, holder in media:
                for kind, content in holder.get("content", {}).items():
                    pointer = "/".join(
                        part.replace("~", "~0").replace("/", "~1")
                        for part in ["paths", path, method, *where.split("/"), "content", kind, "schema"]
                    )
                    validator = Draft202012Validator({"$ref": f"urn:doc#/{pointer}"}, registry=registry)
                    examples = [entry["value"] for entry in content.get("examples", {}).values()]
                    examples += [content["example"]] if "example" in content else []
                    for example in examples:
                        errors = [error.message for error in validator.iter_errors(example)]
                        assert not errors, f"{method.upper()} {path} {where} {kind}: {errors}"
                        checked += 1
    assert checked >= 15


def test_the_document_is_built_once_per_app(http, monkeypatch):
    first = http.get("/openapi.json").data

    def no_second_build(*args, **kwargs):
        raise AssertionError("built twice")

    monkeypatch.setattr(module, "build_document", no_second_build)
    assert http.get("/openapi.json").data == first


def test_it_needs_no_credentials_and_describes_the_failing_answers_too(document):
    item = document["paths"]["/openapi.json"]["get"]
    assert item["security"] == []
    assert document["paths"]["/readyz"]["get"]["responses"]["503"]["content"][PROBLEM]
    assert document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]


def test_the_account_prefix_is_a_server_of_its_own(document, http):
    default, stored = document["servers"]
    assert stored["url"] == default["url"] + "/a/{account}" and stored["variables"]["account"]["default"] == "default"
    assert http.get("/a/default/openapi.json").status_code == 200  # the prefix names the environment's too
