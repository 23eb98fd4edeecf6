"""CS toolset `retention`: churn risk (rules and model), campaigns, escalations and post-mortems."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlmodel import col, select

from revops_core.errors import NotFound, ValidationFailed
from revops_core.guards import PlanPreview, require_confirmation
from revops_core.models import CoreContact
from revops_core.server import Call
from revops_cs.analytics import churn_rules
from revops_cs.common import AsOf, OptClient, get_client, require_all, resolve_as_of
from revops_cs.common import MaxRows as Limit
from revops_cs.models.clients import CsClient
from revops_cs.models.retention import (
    CsCampaignMessage,
    CsChurnModel,
    CsEscalation,
    CsRetentionCampaign,
    CsRetentionTask,
)
from revops_cs.output import MAX_ID, Out, arg
from revops_cs.services import thresholds
from revops_cs.services.churn_training import (
    HISTORY_FEATURES,
    dataset_rows,
    features_as_of,
    history_rows,
    import_csv,
)
from revops_cs.services.signals import History, live_clients, load_histories
from revops_cs.toolsets import retention as toolset

Level = Literal["high", "medium", "low"]


class RulePoints(Out):
    rule: str = Field(description="Rule name.")
    points: int = Field(description="Points awarded.")
    max_points: int = Field(description="Points the rule can award.")
    evidence: str = Field(description="Numbers and dates.")


class ClientRisk(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    score: int = Field(description="Risk points, capped at 100.")
    level: Level = Field(description="high/medium/low.")
    rules: list[RulePoints] = Field(description="Rules with points and evidence.")


class ChurnRiskResult(Out):
    as_of: date = Field(description="As-of date.")
    evaluated: int = Field(description="Clients evaluated.")
    counts: dict[str, int] = Field(description="Clients per level.")
    clients: list[ClientRisk] = Field(description="Ranked clients.")
    thresholds: dict[str, Any] = Field(description="Thresholds used.")


def assess(h: History, as_of: date, cfg: thresholds.ChurnRules) -> ClientRisk:
    """The rules' verdict for one client (shared with renewals and post-mortems)."""
    hits = churn_rules.evaluate(h.risk_facts(as_of, cfg), cfg)
    points = churn_rules.score(hits)
    return ClientRisk(
        client_id=h.client.id or 0,
        name=h.client.name,
        score=points,
        level=churn_rules.level(points, cfg),  # type: ignore[arg-type]
        rules=[
            RulePoints(rule=x.rule, points=x.points, max_points=x.max_points, evidence=x.evidence)
            for x in hits
        ],
    )


def _select_clients(call: Call, client_id: int | None, tier: str | None) -> list[CsClient]:
    if client_id is not None:
        return [get_client(call.db, client_id)]
    return [c for c in live_clients(call.db, call.tenant) if tier is None or c.tier == tier]


@toolset.tool(tier="read")
def identify_churn_risk(
    call: Call,
    client_id: OptClient = None,
    level: Annotated[Level | None, arg(description="Only clients at this level.")] = None,
    tier: Annotated[
        Literal["enterprise", "mid_market", "smb"] | None, arg(description="Only this tier.")
    ] = None,
    as_of: AsOf = None,
    limit: Limit = 50,
) -> ChurnRiskResult:
    """Score churn risk with the explainable rules; every point awarded is listed with its evidence."""
    day = resolve_as_of(as_of)
    cfg = thresholds.load(call.db, thresholds.ChurnRules)
    clients = _select_clients(call, client_id, tier)
    histories = load_histories(call.db, clients)
    risks = sorted((assess(h, day, cfg) for h in histories.values()), key=lambda r: (-r.score, r.client_id))
    counts = {lv: sum(1 for r in risks if r.level == lv) for lv in ("high", "medium", "low")}
    shown = [r for r in risks if level is None or r.level == level][:limit]
    return ChurnRiskResult(
        as_of=day, evaluated=len(risks), counts=counts, clients=shown, thresholds=cfg.model_dump()
    )


class ConfigResult(Out):
    section: str = Field(description="Config section.")
    values: dict[str, Any] = Field(description="Effective values.")
    changed: bool = Field(description="True when overrides were stored.")


@toolset.tool(tier="write", idempotent=True)
def configure_cs_thresholds(
    call: Call,
    section: Annotated[
        Literal["churn_rules", "expansion", "renewal", "revenue", "onboarding", "sla", "churn_model"],
        arg(description="Config section."),
    ],
    values: Annotated[dict[str, Any] | None, arg(description="Keys to set; omit to show.")] = None,
) -> ConfigResult:
    """Show or change thresholds for churn rules, expansion, renewal odds, LTV, onboarding, SLA, model."""
    if not values:
        call.no_change()
        return ConfigResult(
            section=section,
            values=thresholds.load(call.db, thresholds.SECTIONS[section]).model_dump(),
            changed=False,
        )
    effective = thresholds.save(call.db, section, values, call.actor)
    call.target = f"cs_threshold_config:{section}"
    return ConfigResult(section=section, values=effective.model_dump(), changed=True)


class ImportResult(Out):
    dataset: str = Field(description="Dataset name.")
    rows: int = Field(description="Rows stored.")
    churned: int = Field(description="Rows whose outcome is churned.")
    features: list[str] = Field(description="Feature columns stored.")


def _import_dataset(
    call: Call, dataset: str, csv_text: str, id_column: str, label_column: str, replace: bool
) -> ImportResult:
    """Store historical accounts with their churn outcome (CSV) to train a churn model on."""
    rows, churned, features = import_csv(call.db, dataset, csv_text, id_column, label_column, replace)
    call.target = f"cs_churn_dataset:{dataset}"
    call.audit_details.update(rows=rows, churned=churned)
    return ImportResult(dataset=dataset, rows=rows, churned=churned, features=features)


class ModelResult(Out):
    model_id: int = Field(description="Stored model id.")
    source: str = Field(description="history or dataset.")
    positives: int = Field(description="Churned observations used.")
    negatives: int = Field(description="Retained observations used.")
    folds: int = Field(description="Cross-validation folds.")
    auc: float = Field(description="Cross-validated ROC AUC.")
    top_decile_lift: float = Field(description="Top-10% churn rate / overall.")
    brier: float = Field(description="CV Brier score.")
    features: list[str] = Field(description="Input columns.")
    top_coefficients: dict[str, float] = Field(description="Top standardised coefficients.")


def _train(
    call: Call,
    source: Literal["history", "dataset"],
    dataset: str | None,
    horizon_days: int,
    months: int,
    day: date,
) -> ModelResult:
    """Train a logistic churn model with k-fold AUC, top-decile lift and Brier; refuses on too few labels."""
    cfg = thresholds.load(call.db, thresholds.ChurnModelConfig)
    if source == "dataset":
        if not dataset:
            raise ValidationFailed(
                "source=dataset needs a dataset name.", field="dataset", hint="Import one first."
            )
        rows, labels, columns = dataset_rows(call.db, dataset)
        if not rows:
            raise NotFound(
                f"No imported dataset '{dataset}'.", field="dataset", hint="Import it with action=import."
            )
    else:
        clients = live_clients(call.db, call.tenant, include_churned=True)
        rows, labels = history_rows(load_histories(call.db, clients), day, horizon_days, months)
        columns = list(HISTORY_FEATURES)
    pos = sum(labels)
    neg = len(labels) - pos
    if pos < cfg.min_positives or neg < cfg.min_negatives:
        raise ValidationFailed(
            f"Too few labels to train: {pos} churned and {neg} retained observations; need at least "
            f"{cfg.min_positives} churned and {cfg.min_negatives} retained.",
            field="source",
            hint="Record more churned clients (churned_at) or more history, import a dataset, or lower "
            "churn_model.min_positives/min_negatives with configure_cs_thresholds.",
            details={"positives": pos, "negatives": neg, "needed": [cfg.min_positives, cfg.min_negatives]},
        )
    from revops_cs.analytics import churn_model  # numpy: loaded only to train or score

    spec = churn_model.build_encoding(rows, columns)
    x = churn_model.encode(rows, spec)
    y = churn_model.labels_vector(labels)
    folds = min(cfg.folds, pos, neg)
    metrics = churn_model.cross_validate(x, y, folds, cfg.l2)
    fitted = churn_model.fit(x, y, cfg.l2)
    names = churn_model.encoded_names(spec)
    params = {
        "encoding": spec,
        "means": fitted.means.tolist(),
        "stds": fitted.stds.tolist(),
        "coefficients": fitted.coef.tolist(),
        "intercept": fitted.intercept,
    }
    model = CsChurnModel(
        source=source,
        dataset=dataset if source == "dataset" else None,
        observed_until=day if source == "history" else None,
        horizon_days=horizon_days if source == "history" else None,
        l2=cfg.l2,
        folds=folds,
        positives=pos,
        negatives=neg,
        auc=metrics.auc,
        top_decile_lift=metrics.top_decile_lift,
        brier=metrics.brier,
        features=json.dumps(columns),
        params=json.dumps(params),
        trained_by=call.actor,
    )
    call.db.add(model)
    call.db.flush()
    call.target = f"cs_churn_model:{model.id}"
    top = sorted(zip(names, fitted.coef.tolist(), strict=True), key=lambda t: -abs(t[1]))[:8]
    return ModelResult(
        model_id=model.id or 0,
        source=source,
        positives=pos,
        negatives=neg,
        folds=folds,
        auc=round(metrics.auc, 4),
        top_decile_lift=round(metrics.top_decile_lift, 3),
        brier=round(metrics.brier, 4),
        features=columns,
        top_coefficients={n: round(c, 4) for n, c in top},
    )


class Prediction(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    probability: float = Field(description="P(churn within horizon).")


class PredictResult(Out):
    model_id: int = Field(description="Model used.")
    as_of: date = Field(description="As-of date.")
    horizon_days: int = Field(description="Prediction horizon in days.")
    model_auc: float = Field(description="The model's cross-validated AUC.")
    predictions: list[Prediction] = Field(description="Highest first.")


def _predict(call: Call, model_id: int | None, client_id: int | None, day: date, limit: int) -> PredictResult:
    """Churn probability per client from a model trained on this account's history."""
    if model_id is not None:
        model = call.db.get(CsChurnModel, model_id)
    else:
        model = call.db.exec(
            select(CsChurnModel).where(CsChurnModel.source == "history").order_by(col(CsChurnModel.id).desc())
        ).first()
    if model is None:
        raise NotFound("No churn model found.", field="model_id", hint="Train one with action=train.")
    if model.source != "history":
        raise ValidationFailed(
            f"Model {model.id} was trained on imported dataset '{model.dataset}', whose columns are not "
            "measured for live clients.",
            field="model_id",
            hint="Train with source=history to score clients.",
        )
    params = json.loads(model.params)
    from revops_cs.analytics import churn_model  # numpy: loaded only to train or score

    fitted = churn_model.Fitted.from_params(params)
    clients = _select_clients(call, client_id, None)
    histories = load_histories(call.db, clients)
    rows = [features_as_of(h, day) for h in histories.values()]
    probs = list(fitted.predict(churn_model.encode(rows, params["encoding"]))) if rows else []
    preds = [
        Prediction(client_id=h.client.id or 0, name=h.client.name, probability=round(float(p), 4))
        for h, p in zip(histories.values(), probs, strict=True)
    ]
    preds.sort(key=lambda p: (-p.probability, p.client_id))
    return PredictResult(
        model_id=model.id or 0,
        as_of=day,
        horizon_days=model.horizon_days or 0,
        model_auc=round(model.auc, 4),
        predictions=preds[:limit],
    )


class ChurnModelResult(Out):
    action: str = Field(description="Action done.")
    imported: ImportResult | None = Field(default=None, description="import: the stored dataset.")
    model: ModelResult | None = Field(default=None, description="train: the model and its CV metrics.")
    prediction: PredictResult | None = Field(default=None, description="predict: probabilities.")


@toolset.tool(tier="write", idempotent=False)
def manage_churn_model(
    call: Call,
    action: Annotated[Literal["import", "train", "predict"], arg("import a CSV dataset, train, or predict.")],
    dataset: Annotated[str | None, arg("Dataset name (import; train from it).", max_length=100)] = None,
    csv_text: Annotated[
        str | None,
        arg("import: CSV with header; account, outcome (1/0, yes/no), features.", max_length=20_000_000),
    ] = None,
    id_column: Annotated[str, arg("import: account column.", max_length=100)] = "account_ref",
    label_column: Annotated[str, arg("import: churn outcome column.", max_length=100)] = "churned",
    replace: Annotated[bool, arg("import: replace a same-name dataset.")] = False,
    source: Annotated[Literal["history", "dataset"], arg("train: client history or a dataset.")] = "history",
    horizon_days: Annotated[int, arg("train: label = churned within N days.", ge=7, le=365)] = 90,
    months: Annotated[int, arg("train: monthly observations.", ge=1, le=60)] = 24,
    model_id: Annotated[int | None, arg("predict: model (default latest history).", ge=1, le=MAX_ID)] = None,
    client_id: OptClient = None,
    as_of: AsOf = None,
    limit: Limit = 50,
) -> ChurnModelResult:
    """Churn model: import labelled accounts (CSV), train logistic regression (CV AUC), predict per client."""
    day = resolve_as_of(as_of)
    if action == "import":
        require_all("import", dataset=dataset, csv_text=csv_text)
        imported = _import_dataset(call, dataset, csv_text, id_column, label_column, replace)
        return ChurnModelResult(action=action, imported=imported)
    if action == "train":
        return ChurnModelResult(action=action, model=_train(call, source, dataset, horizon_days, months, day))
    call.no_change()
    return ChurnModelResult(action=action, prediction=_predict(call, model_id, client_id, day, limit))


class CreatedRow(Out):
    kind: str = Field(description="task or message.")
    id: int = Field(description="Row id.")
    client_id: int = Field(description="Client id.")
    detail: str = Field(description="Title or recipient.")


class CampaignResult(Out):
    done: bool = Field(description="Rows created.")
    campaign_id: int | None = Field(description="Campaign id (after confirm).")
    targets: list[int] = Field(description="Client ids targeted.")
    created: list[CreatedRow] = Field(description="Exactly the rows created.")
    emails_sent: int = Field(description="Emails sent (messages are queued).")
    note: str = Field(description="What happened to messages.")
    plan: dict[str, Any] | None = Field(default=None, description="Plan to confirm; null once done.")


@toolset.tool(tier="destructive", idempotent=False)
def execute_retention_campaign(
    call: Call,
    name: Annotated[str, arg(min_length=1, max_length=200, description="Campaign name.")],
    task_title: Annotated[str, arg(min_length=1, max_length=300, description="Task title.")],
    risk_level: Annotated[Level | None, arg(description="Churn-risk level.")] = None,
    tier: Annotated[
        Literal["enterprise", "mid_market", "smb"] | None, arg(description="Only this tier.")
    ] = None,
    client_ids: Annotated[list[int] | None, arg(max_length=500, description="Explicit client ids.")] = None,
    due_in_days: Annotated[int, arg(ge=0, le=365, description="Task due date offset.")] = 7,
    message_subject: Annotated[str | None, arg(max_length=300, description="Message subject.")] = None,
    message_body: Annotated[str | None, arg(max_length=10_000, description="Message body.")] = None,
    confirm: Annotated[str | None, arg(max_length=100, description="plan_id from the first call.")] = None,
) -> CampaignResult:
    """Retention campaign for real clients picked by filter: tasks + queued messages; plan, then confirm."""
    if risk_level is None and tier is None and not client_ids:
        raise ValidationFailed(
            "No target filter given.", field="risk_level", hint="Give risk_level, tier or client_ids."
        )
    if (message_subject is None) != (message_body is None):
        raise ValidationFailed(
            "Give both message_subject and message_body, or neither.",
            field="message_body",
            hint="Add the other.",
        )
    today = datetime.now(UTC).date()
    if client_ids:
        clients = [get_client(call.db, cid) for cid in dict.fromkeys(client_ids)]
        clients = [c for c in clients if tier is None or c.tier == tier]
    else:
        clients = _select_clients(call, None, tier)
    if risk_level is not None:
        cfg = thresholds.load(call.db, thresholds.ChurnRules)
        hist = load_histories(call.db, clients)
        clients = [c for c in clients if assess(hist[c.id or 0], today, cfg).level == risk_level]
    if not clients:
        raise ValidationFailed(
            "The filter selects no clients; nothing was planned.",
            field="risk_level",
            hint="Widen the filter.",
        )
    contacts = _primary_contacts(call, clients) if message_subject else {}
    preview = PlanPreview(
        summary=f"Create campaign '{name}': {len(clients)} task(s)"
        + (f" and {len(contacts)} queued message(s)" if message_subject else ""),
        affected_count=len(clients) + len(contacts),
        sample=[{"client_id": c.id, "name": c.name, "tier": c.tier} for c in clients[:10]],
        reversible=False,
        notes=["Messages are recorded as queued; no email is sent by this tool."] if message_subject else [],
    )
    fingerprint = {"targets": [c.id for c in clients], "contacts": sorted(contacts.items())}
    plan = require_confirmation(call, confirm=confirm, preview=preview, fingerprint=fingerprint)
    targets = [c.id or 0 for c in clients]
    # Sending is the communication toolset's job (vendor call, dedupe, plan of its own); this tool only
    # records the messages as queued and says how to send them, never claiming a send.
    note = (
        "Messages queued in cs_campaign_message; no email was sent. To send, call "
        f"send_personalized_email with client_ids={targets} and the same subject/body."
        if message_subject
        else "No messages."
    )
    if plan is not None:
        return CampaignResult(
            done=False,
            campaign_id=None,
            targets=targets,
            created=[],
            emails_sent=0,
            note=note,
            plan=plan.model_dump(mode="json"),
        )
    campaign = CsRetentionCampaign(
        name=name,
        filter=json.dumps({"risk_level": risk_level, "tier": tier, "client_ids": client_ids}),
        message_subject=message_subject,
        message_body=message_body,
        created_by=call.actor,
    )
    call.db.add(campaign)
    call.db.flush()
    created: list[CreatedRow] = []
    for c in clients:
        task = CsRetentionTask(
            campaign_id=campaign.id,
            client_id=c.id or 0,
            title=task_title,
            owner=c.owner,
            due_date=today + timedelta(days=due_in_days),
        )
        call.db.add(task)
        call.db.flush()
        created.append(CreatedRow(kind="task", id=task.id or 0, client_id=c.id or 0, detail=task_title))
        if message_subject and message_body and (c.id or 0) in contacts:
            contact_id = contacts[c.id or 0]
            contact = call.db.get(CoreContact, contact_id)
            msg = CsCampaignMessage(
                campaign_id=campaign.id or 0,
                client_id=c.id or 0,
                contact_id=contact_id,
                to_email=contact.email if contact else None,
                subject=message_subject,
                body=message_body,
            )
            call.db.add(msg)
            call.db.flush()
            created.append(
                CreatedRow(kind="message", id=msg.id or 0, client_id=c.id or 0, detail=msg.to_email or "")
            )
    call.target = f"cs_retention_campaign:{campaign.id}"
    call.audit_details.update(tasks=len(clients), messages=sum(1 for r in created if r.kind == "message"))
    return CampaignResult(
        done=True, campaign_id=campaign.id, targets=targets, created=created, emails_sent=0, note=note
    )


def _primary_contacts(call: Call, clients: list[CsClient]) -> dict[int, int]:
    """client id -> contact id of its primary (else first) live, subscribed contact."""
    out: dict[int, int] = {}
    for c in clients:
        contact = call.db.exec(
            select(CoreContact)
            .where(
                CoreContact.company_id == c.company_id,
                col(CoreContact.deleted_at).is_(None),
                col(CoreContact.unsubscribed_at).is_(None),
            )
            .order_by(col(CoreContact.is_primary).desc(), col(CoreContact.id))
        ).first()
        if contact is not None:
            out[c.id or 0] = contact.id or 0
    return out


class EscalationOut(Out):
    id: int = arg(description="Escalation id.")
    client_id: int = arg(description="Client id.")
    severity: str = arg(description="urgent / high / normal / low.")
    title: str = arg(description="Title.")
    status: str = arg(description="open or resolved.")
    opened_at: datetime = arg(description="Opened (UTC).")
    due_at: datetime = arg(description="SLA resolution due.")
    resolved_at: datetime | None = arg(description="Resolved (UTC).")
    breached: bool = arg(description="Past due_at.")
    minutes_left: int | None = arg(description="Minutes to due (<0 overdue).")


class EscalationsResult(Out):
    escalations: list[EscalationOut] = arg(description="Escalations.")
    breached: int = arg(description="How many of those are breached.")


def _esc_out(e: CsEscalation, now: datetime) -> EscalationOut:
    end = e.resolved_at or now
    return EscalationOut(
        id=e.id or 0,
        client_id=e.client_id,
        severity=e.severity,
        title=e.title,
        status=e.status,
        opened_at=e.opened_at,
        due_at=e.due_at,
        resolved_at=e.resolved_at,
        breached=end > e.due_at,
        minutes_left=None if e.resolved_at else int((e.due_at - now).total_seconds() // 60),
    )


@toolset.tool(tier="write", idempotent=False)
def manage_escalations(
    call: Call,
    action: Annotated[Literal["create", "list", "resolve"], arg(description="What to do.")],
    client_id: Annotated[int | None, arg(ge=1, description="Client (create; filter for list).")] = None,
    severity: Annotated[
        Literal["urgent", "high", "normal", "low"] | None, arg(description="Severity.")
    ] = None,
    title: Annotated[str | None, arg(max_length=300, description="Title (create).")] = None,
    opened_at: Annotated[datetime | None, arg(description="Raised at (default now).")] = None,
    escalation_id: Annotated[int | None, arg(ge=1, description="Escalation (resolve).")] = None,
    resolution: Annotated[str | None, arg(max_length=2000, description="Resolution note (resolve).")] = None,
    status: Annotated[Literal["open", "resolved"] | None, arg(description="Filter (list).")] = None,
    limit: Limit = 50,
) -> EscalationsResult:
    """Create, list or resolve escalations; due time from the severity's SLA target, breach flag."""
    now = datetime.now(UTC)
    if action == "list":
        call.no_change()
        q = select(CsEscalation).order_by(col(CsEscalation.due_at))
        if client_id is not None:
            q = q.where(CsEscalation.client_id == get_client(call.db, client_id).id)
        if status is not None:
            q = q.where(CsEscalation.status == status)
        rows = [_esc_out(e, now) for e in call.db.exec(q.limit(limit))]
        return EscalationsResult(escalations=rows, breached=sum(r.breached for r in rows))
    if action == "create":
        if client_id is None or severity is None or not title:
            raise ValidationFailed(
                "create needs client_id, severity and title.", field="title", hint="Give all three."
            )
        client = get_client(call.db, client_id)
        start = opened_at or now
        if start.tzinfo is None:
            raise ValidationFailed("opened_at needs a timezone.", field="opened_at", hint="Use e.g. …Z.")
        if start > now:
            raise ValidationFailed("opened_at is in the future.", field="opened_at", hint="Use a past time.")
        sla = thresholds.load(call.db, thresholds.Sla)
        esc = CsEscalation(
            client_id=client.id or 0,
            severity=severity,
            title=title,
            owner=client.owner,
            opened_at=start,
            due_at=start + timedelta(minutes=sla.resolution_minutes[severity]),
        )
        call.db.add(esc)
        call.db.flush()
    else:
        if escalation_id is None:
            raise ValidationFailed("resolve needs escalation_id.", field="escalation_id", hint="Give the id.")
        found = call.db.get(CsEscalation, escalation_id)
        if found is None:
            raise NotFound(f"No escalation {escalation_id}.", field="escalation_id", hint="List escalations.")
        if found.status == "resolved":
            raise ValidationFailed(
                f"Escalation {escalation_id} is already resolved.",
                field="escalation_id",
                hint="Nothing to do.",
            )
        esc = found
        esc.status, esc.resolved_at, esc.resolution = "resolved", now, resolution
        call.db.add(esc)
    call.target = f"cs_escalation:{esc.id}"
    out = _esc_out(esc, now)
    return EscalationsResult(escalations=[out], breached=int(out.breached))


class MonthSignals(Out):
    months_before: int = Field(description="Months before churn.")
    usage_events: int = Field(description="Usage events that month.")
    tickets: int = Field(description="Tickets opened that month.")
    failed_payments: int = Field(description="Failed payments that month.")
    nps: int | None = Field(description="Latest NPS.")
    health: float | None = Field(description="Latest health score.")


class ChurnedClient(Out):
    client_id: int = Field(description="Client id.")
    name: str = Field(description="Client name.")
    churned_on: date = Field(description="Churn date.")
    months: list[MonthSignals] = Field(description="Signals per month before churn.")
    rules_before: list[str] = Field(description="Rules firing lead_days before.")
    risk_score_before: int = Field(description="Score before churn.")


class PostmortemResult(Out):
    churned_clients: int = Field(description="Churned clients analysed.")
    clients: list[ChurnedClient] = Field(description="Per client trajectories.")
    median_by_month: list[dict[str, Any]] = Field(description="Medians per month before churn.")
    rule_share: dict[str, float] = Field(description="Rule -> share of churned clients it flagged.")
    flagged_share: float | None = Field(description="Share scored medium/high before churn.")


@toolset.tool(tier="read")
def analyze_churn_postmortem(
    call: Call,
    client_id: Annotated[int | None, arg(ge=1, description="One churned client; omit for all.")] = None,
    since: Annotated[date | None, arg(description="Churned on/after.")] = None,
    months: Annotated[int, arg(ge=1, le=24, description="Months before churn to show.")] = 6,
    lead_days: Annotated[int, arg(ge=1, le=365, description="Rules evaluated this long before churn.")] = 30,
    limit: Limit = 50,
) -> PostmortemResult:
    """Churned clients: usage, tickets, NPS, payments, health in the months before churn, aggregated."""
    q = select(CsClient).where(col(CsClient.churned_at).is_not(None), col(CsClient.deleted_at).is_(None))
    if client_id is not None:
        client = get_client(call.db, client_id)
        if client.churned_at is None:
            raise ValidationFailed(
                f"Client {client_id} has not churned.", field="client_id", hint="Pick a churned client."
            )
        q = q.where(CsClient.id == client_id)
    clients = [
        c for c in call.db.exec(q.order_by(col(CsClient.id))) if since is None or c.churned_at.date() >= since
    ]  # type: ignore[union-attr]
    cfg = thresholds.load(call.db, thresholds.ChurnRules)
    histories = load_histories(call.db, clients)
    out: list[ChurnedClient] = []
    for h in histories.values():
        churned = h.client.churned_at.date()  # type: ignore[union-attr]
        series = []
        for m in range(1, months + 1):
            end = churned - timedelta(days=30 * (m - 1))
            nps = h.latest_nps(end)
            snap = h.latest_health(end)
            series.append(
                MonthSignals(
                    months_before=m,
                    usage_events=h.usage_window(end, 30),
                    tickets=h.tickets_in(end, 30),
                    failed_payments=len(h.failed_payments_in(end, 30)),
                    nps=nps[0] if nps else None,
                    health=snap.score if snap else None,
                )
            )
        risk = assess(h, churned - timedelta(days=lead_days), cfg)
        out.append(
            ChurnedClient(
                client_id=h.client.id or 0,
                name=h.client.name,
                churned_on=churned,
                months=series,
                rules_before=[r.rule for r in risk.rules if r.points],
                risk_score_before=risk.score,
            )
        )
    medians = []
    for m in range(1, months + 1):
        rows = [c.months[m - 1] for c in out]
        health = [r.health for r in rows if r.health is not None]
        medians.append(
            {
                "months_before": m,
                "usage_events": statistics.median([r.usage_events for r in rows]) if rows else None,
                "tickets": statistics.median([r.tickets for r in rows]) if rows else None,
                "health": statistics.median(health) if health else None,
            }
        )
    rules = churn_rules.RULES
    share = {r: round(sum(r in c.rules_before for c in out) / len(out), 4) for r in rules} if out else {}
    flagged = sum(c.risk_score_before >= cfg.medium_at for c in out) / len(out) if out else None
    return PostmortemResult(
        churned_clients=len(out),
        clients=out[:limit],
        median_by_month=medians,
        rule_share=share,
        flagged_share=round(flagged, 4) if flagged is not None else None,
    )
