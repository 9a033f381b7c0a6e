"""The words `omniconsole explain` prints, from the data of `omniconsole.engine.explain`.

Also what the console's customer pane shows, so a support agent and a script read the
same chain.
"""

from __future__ import annotations

from typing import Any

from omniconsole.domain.assignment import HOLDOUT_GLOBAL, HOLDOUT_JOURNEY

_ARMS = {
    HOLDOUT_JOURNEY: "held out: in the journey's control group (nothing is sent)",
    HOLDOUT_GLOBAL: "held out: in the global control group (nothing is sent)",
}


def _arm(arm: str | None) -> str | None:
    if arm is None:
        return None
    return _ARMS.get(arm, f"variant {arm}")


def _verification(data: dict[str, Any]) -> list[str]:
    if data["verified"]:
        return [
            f"Verified: re-running the customer's {data['events']} applied events gives the "
            f"same {data['ledger_lines']} ledger lines as the store."
        ]
    out = [
        "Not explained: re-running the customer's events does not give the ledger the store",
        f"holds ({data['mismatch']}).",
        "The store was written with another config or engine; the stored lines and the",
        "engine's own words follow.",
    ]
    for entry in data.get("stored", []):
        line = entry["line"]
        out.append(
            f"  {line['at']}  {line['message_id']}  {line['outcome']}"
            f" {line['channel'] or ''} {line['reason'] or ''}".rstrip()
        )
        out.append(f"      {entry['explanation']}")
    return out


def _story(story: dict[str, Any], indent: str) -> list[str]:
    out = [
        f"{indent}{story['journey']} #{story['instance']}: entered at {story['entered_at']} "
        f"by {story['entered_by']}"
    ]
    arm = _arm(story["arm"])
    if arm:
        out.append(f"{indent}  {arm}")
    if story["ended_at"]:
        out.append(f"{indent}  {story['status']} at {story['ended_at']} by {story['ended_by']}")
    else:
        out.append(f"{indent}  still live")
    return out


def _decision(n: int, d: dict[str, Any], indent: str) -> list[str]:
    out = [f"{indent}Decision {n} at {d['at']} — {d['trigger']}"]
    if d["arm"]:
        out.append(f"{indent}  arm: {_arm(d['arm'])}")
    if d["channels"]:
        out.append(f"{indent}  channels, in the order tried:")
        for c in d["channels"]:
            mark = "→" if c["channel"] == d["chosen"] else " "
            out.append(f"{indent}   {mark} {c['channel']}: {c['why']}")
    for rule in d["suppression"]:
        out.append(f"{indent}  suppression {rule}")
    if d["quiet_hours"]:
        out.append(f"{indent}  quiet hours: {d['quiet_hours']}")
    for cap in d["caps"]:
        out.append(f"{indent}  all-channel cap {cap['words']}")
    outcome = d["outcome"] + (f" ({d['reason']})" if d["reason"] else "")
    if d["until"]:
        outcome += f", to be decided again at {d['until']}"
    out.append(f"{indent}  ⇒ {outcome}: {d['governor']}")
    return out


def _final(final: dict[str, Any]) -> str:
    if final["outcome"] == "never created":
        return f"Never created: {final['why']}"
    where = f" on {final['channel']}" if final["channel"] else ""
    reason = f" ({final['reason']})" if final["reason"] else ""
    return f"Final outcome: {final['outcome']}{where}{reason} at {final['at']}"


def explain_text(data: dict[str, Any]) -> str:
    """The chain in words."""
    out: list[str] = []
    if data["kind"] == "message":
        out.append(f"Message {data['message_id']} (customer {data['customer']})")
        if not data["verified"]:
            return "\n".join(out + _verification(data)) + "\n"
        story = data.get("instance_story")
        if story is not None:
            out += _story(story, "  ")
            for note in story["notes"]:
                if note["step"] == data["step"]:
                    out.append(f"  {note['step']}: {note['words']}")
        for n, d in enumerate(data["decisions"], start=1):
            out += _decision(n, d, "  ")
        out.append(_final(data["final"]))
        out += _verification(data)
        return "\n".join(out) + "\n"
    title = f"Customer {data['customer']}"
    if data["journey"]:
        title += f", journey {data['journey']}"
    out.append(title)
    if not data["verified"]:
        return "\n".join(out + _verification(data)) + "\n"
    for entry in data["instances"]:
        out += _story(entry, "  ")
        for step, final in entry["steps"].items():
            if final["outcome"] == "never created":
                out.append(f"    {step}: never created — {final['why']}")
            else:
                where = f" on {final['channel']}" if final["channel"] else ""
                reason = f" ({final['reason']})" if final["reason"] else ""
                out.append(f"    {step}: {final['outcome']}{where}{reason} at {final['at']}")
    for refused in data["refused_entries"]:
        out.append(
            f"  {refused['journey']}: not entered at {refused['at']} by {refused['event']}:"
            f" {refused['why']}"
        )
    for message in data["messages"]:
        out.append("")
        out.append(f"Message {message['message_id']}")
        for n, d in enumerate(message["decisions"], start=1):
            out += _decision(n, d, "  ")
        out.append("  " + _final(message["final"]))
    out.append("")
    out += _verification(data)
    return "\n".join(out) + "\n"
