"""Apollo.io REST API v1 client on `IntegrationClient`: people and organisation search, person and
organisation enrichment.

Apollo publishes no OpenAPI description (none is in /work/shared/specs), so the request and response
shapes this client relies on are written down here, from Apollo's API reference
(docs.apollo.io), and the tests validate every request against `REQUESTS` below:

    auth        header `x-api-key: <api key>`; base https://api.apollo.io/api/v1
    POST /mixed_people/search      {person_titles?: [str], person_locations?: [str],
                                    q_organization_domains_list?: [str], page: int, per_page: int}
                → {people: [{id, name?, first_name?, last_name?, title?, email?, country?,
                             organization?: {name?, primary_domain?}}],
                   pagination: {page, per_page, total_entries, total_pages}}
    POST /mixed_companies/search   {q_organization_name?: str, organization_locations?: [str],
                                    organization_num_employees_ranges?: ["min,max"], page, per_page}
                → {organizations: [{id, name?, primary_domain?, industry?,
                                    estimated_num_employees?, country?}], pagination: {…}}
    POST /people/match             {email: str, reveal_personal_emails: false}
                → {person: {…person…} | null}
    GET  /organizations/enrich?domain=<domain>
                → {organization: {…organization…} | null}

Credits: enrichment and search spend Apollo credits on metered plans, so every call goes through
plan → confirm with an estimate (one credit per enriched record, one per search page; Apollo bills
per plan, and the preview says it is an estimate). Searches and matches change nothing at Apollo,
so they are sent as safe-to-retry reads. Key: `revops vault set apollo api_key=<api key>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from revops_core.errors import IntegrationUnavailable
from revops_core.secret_values import Secret
from revops_core.vendor_kit import VendorSpec, require_fields

if TYPE_CHECKING:
    from revops_core.server import Runtime

SPEC = VendorSpec(
    provider="apollo", title="Apollo.io", fields=("api_key",), placeholders={"api_key": "<api key>"}
)
BASE_URL = "https://api.apollo.io/api/v1"
MAX_PER_PAGE = 100

# The documented request bodies: which keys each endpoint takes and the JSON type of each.
REQUESTS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "/mixed_people/search": {
        "person_titles": list,
        "person_locations": list,
        "q_organization_domains_list": list,
        "page": int,
        "per_page": int,
    },
    "/mixed_companies/search": {
        "q_organization_name": str,
        "organization_locations": list,
        "organization_num_employees_ranges": list,
        "page": int,
        "per_page": int,
    },
    "/people/match": {"email": str, "reveal_personal_emails": bool},
}


@dataclass(frozen=True)
class ApolloCredentials:
    api_key: Secret


def require_credentials(runtime: Runtime) -> ApolloCredentials:
    """The API key, or `configuration_error` naming `revops vault set apollo api_key=<api key>`."""
    return ApolloCredentials(require_fields(runtime, SPEC)["api_key"])


def _malformed(what: str) -> IntegrationUnavailable:
    return IntegrationUnavailable(f"Apollo's answer has no {what}.", outcome="failed", retryable=False)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def person(raw: Any) -> dict[str, Any]:
    """The documented person fields this suite keeps (anything else is dropped)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _malformed("person id")
    org: dict[str, Any] = raw["organization"] if isinstance(raw.get("organization"), dict) else {}
    name = _text(raw.get("name")) or " ".join(
        p for p in (_text(raw.get("first_name")), _text(raw.get("last_name"))) if p
    )
    email = _text(raw.get("email"))
    return {
        "apollo_id": raw["id"],
        "name": name or None,
        "title": _text(raw.get("title")),
        # Apollo masks addresses it has not revealed as email_not_unlocked@…: not an address.
        "email": None if email is None or email.startswith("email_not_unlocked") else email.lower(),
        "country": _text(raw.get("country")),
        "company_name": _text(org.get("name")),
        "company_domain": _text(org.get("primary_domain")),
    }


def organization(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _malformed("organization id")
    employees = raw.get("estimated_num_employees")
    return {
        "apollo_id": raw["id"],
        "name": _text(raw.get("name")),
        "domain": _text(raw.get("primary_domain")),
        "industry": _text(raw.get("industry")),
        "employees": employees if isinstance(employees, int) and not isinstance(employees, bool) else None,
        "country": _text(raw.get("country")),
    }


def _page(body: Any, items: str) -> tuple[list[Any], dict[str, int]]:
    if not isinstance(body, dict) or not isinstance(body.get(items), list):
        raise _malformed(f"{items} list")
    pagination = body.get("pagination")
    if not isinstance(pagination, dict) or not all(
        isinstance(pagination.get(k), int) for k in ("page", "per_page", "total_entries")
    ):
        raise _malformed("pagination")
    return body[items], {k: int(pagination[k]) for k in ("page", "per_page", "total_entries")}


class ApolloClient:
    """Typed calls to the four Apollo endpoints the Sales server uses."""

    def __init__(self, credentials: ApolloCredentials, settings: Any, **client_options: Any) -> None:
        from revops_core.integration import IntegrationClient

        async def auth() -> dict[str, str]:
            return {"x-api-key": credentials.api_key.reveal()}

        self._http = IntegrationClient(
            SPEC.provider,
            BASE_URL,
            settings=settings,
            auth=auth,
            default_headers={"Accept": "application/json", "Cache-Control": "no-cache"},
            **client_options,
        )

    async def __aenter__(self) -> ApolloClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._http.post_json(path, dict(body), idempotent=True)

    async def search_people(self, body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, int]]:
        raw, pagination = _page(await self._post("/mixed_people/search", body), "people")
        return [person(p) for p in raw], pagination

    async def search_organizations(
        self, body: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], dict[str, int]]:
        raw, pagination = _page(await self._post("/mixed_companies/search", body), "organizations")
        return [organization(o) for o in raw], pagination

    async def enrich_person(self, email: str) -> dict[str, Any] | None:
        body = await self._post("/people/match", {"email": email, "reveal_personal_emails": False})
        if not isinstance(body, dict) or "person" not in body:
            raise _malformed("person")
        return None if body["person"] is None else person(body["person"])

    async def enrich_organization(self, domain: str) -> dict[str, Any] | None:
        body = await self._http.get_json("/organizations/enrich", params={"domain": domain})
        if not isinstance(body, dict) or "organization" not in body:
            raise _malformed("organization")
        return None if body["organization"] is None else organization(body["organization"])
