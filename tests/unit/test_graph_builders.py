"""Alternate-key request builders each keep their own key, however many share one Graph client."""

from __future__ import annotations

from shared.graph import _own_path, graph_client
from shared.settings import Settings


class NoCredential:
    """Never asked: building a request needs no token."""

    def get_token(self, *scopes, **kwargs):  # pragma: no cover - not called
        raise AssertionError("no token is needed to build a request")


def test_builders_made_one_after_another_keep_their_own_key():
    from msgraph.generated.applications_with_unique_name.applications_with_unique_name_request_builder import (
        ApplicationsWithUniqueNameRequestBuilder,
    )

    client = graph_client(Settings(), NoCredential())
    first = ApplicationsWithUniqueNameRequestBuilder(*_own_path(client), "certauth-aaa")
    second = ApplicationsWithUniqueNameRequestBuilder(*_own_path(client), "certauth-bbb")
    assert "certauth-aaa" in first.to_get_request_information().url
    assert "certauth-bbb" in second.to_get_request_information().url
    # What the SDK's own shortcut does: the first request now names the second key.
    shared = client.applications_with_unique_name("certauth-ccc")
    client.applications_with_unique_name("certauth-ddd")
    assert "certauth-ddd" in shared.to_get_request_information().url
