"""Governance commands: ``keygen``, ``zone new/update/show/admit-host/revoke-host/override``,
``policy check``. ``register(main)`` adds them to the ``meshnode`` click group.

A *zone file* (canonical CBOR) holds everything signed for one zone: descriptor versions,
contracts, the policy references agents carry, host records, revocations and overrides. The
commands create and sign these; a running node publishes them on the zone's control topic.
User errors print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import nacl.signing
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.schema import MAX_AGENT_BYTES
from protocols.errors import MeshError
from protocols.governance.bundle import MAX_BUNDLE_BYTES, ZoneBundle
from protocols.governance.meta import Action, Override
from protocols.governance.policy import Contract, contract_from_toml, facts_of, make_policy_ref
from protocols.governance.signing import (
    Authority,
    public_key,
    signing_key,
)
from protocols.governance.zone import (
    PUBLISH_LEAD_EPOCHS,
    QuorumParams,
    ZoneDescriptor,
    check_publication,
    successor,
)
from protocols.identity.host import (
    HostGrant,
    sign_record,
    sign_revocation,
)
from protocols.types import PolicyVerdict, ValidationStatus

console = Console()
KEY_KIND = "meshnode-ed25519-seed"
EPOCH_S = 10
"""DESIGN 5: epoch = floor(unix_time / EPOCH_S) (the same constant as the node's)."""
MAX_ZONE_FILE = 4 * 1024 * 1024
F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(func: F) -> F:
    """Turn input errors into one line and exit code 1 (click prints ``Error: ...``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MeshError as exc:
            raise click.ClickException(exc.describe()) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or ''}: {exc.strerror}") from None

    return wrapper  # type: ignore[return-value]


def _hex(value: str, what: str, length: int = 32) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be hex") from None
    if len(raw) != length:
        raise click.BadParameter(f"{what} must be {length} bytes ({2 * length} hex digits)")
    return raw


# -- key files ------------------------------------------------------------------------------


def write_key(path: Path, seed: bytes) -> None:
    """A signing-key file, readable by its owner only."""
    data = codec.encode({"kind": KEY_KIND, "seed": seed})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_key(path: Path) -> nacl.signing.SigningKey:
    if path.stat().st_mode & 0o077:
        raise MeshError(f"key file {path} is readable by other users (chmod 600 it)")
    tree = codec.decode(path.read_bytes()[:4096], max_bytes=4096)
    if not isinstance(tree, dict) or tree.get("kind") != KEY_KIND:
        raise MeshError(f"{path} is not a meshnode key file (make one with `meshnode keygen`)")
    seed = tree.get("seed")
    if not isinstance(seed, bytes):
        raise MeshError(f"{path} holds no seed")
    return signing_key(seed)


KEY_OPTION = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("keygen")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Key file to create (mode 0600; never overwritten).",
)
@_user_errors
def keygen(out: Path) -> None:
    """Create an Ed25519 signing key (zone authority, meta-authority or validator)."""
    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite a key")
    seed = os.urandom(32)
    write_key(out, seed)
    click.echo(f"wrote {out}  public key {public_key(signing_key(seed)).hex()}")


# -- zone files -----------------------------------------------------------------------------


def load_zone(path: Path) -> ZoneBundle:
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise MeshError(f"{path} is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        return ZoneBundle.decode(path.read_bytes())
    except MeshError as exc:
        raise MeshError(f"{path} is not a zone file ({exc.describe()})") from None


def save_zone(path: Path, bundle: ZoneBundle) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(bundle.encode())
    tmp.replace(path)


@click.group("zone")
def zone() -> None:
    """Create, inspect and sign a zone's governance file."""


@zone.command("new")
@click.option("--id", "zone_id", required=True, help="Zone id (its topic name).")
@click.option(
    "--policy",
    "policy",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Policy contract TOML (see examples/zone-policy.toml).",
)
@click.option(
    "--key", "keys", required=True, multiple=True, type=KEY_OPTION, help="Authority key file(s)."
)
@click.option("--threshold", type=click.IntRange(min=1), help="m of the m-of-k authority.")
@click.option(
    "--meta-key", "meta_keys", multiple=True, type=KEY_OPTION, help="Meta-authority key file(s)."
)
@click.option("--validator", "validators", multiple=True, help="Validator host key (hex).")
@click.option("--activation-epoch", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--quorum-mode", type=click.Choice(["global", "local"]), default="global")
@click.option("--n", "n", default=5, show_default=True, type=click.IntRange(1, 64))
@click.option("--k-min", default=4, show_default=True, type=click.IntRange(1, 64))
@click.option("--cross-zone", "cross", multiple=True, help="Zone agents may enter from freely.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Zone file.")
@_user_errors
def zone_new(
    zone_id: str,
    policy: Path,
    keys: tuple[Path, ...],
    threshold: int | None,
    meta_keys: tuple[Path, ...],
    validators: tuple[str, ...],
    activation_epoch: int,
    quorum_mode: str,
    n: int,
    k_min: int,
    cross: tuple[str, ...],
    out: Path | None,
) -> None:
    """Sign a zone descriptor (version 1) and its policy contract into a new zone file."""
    signers = [read_key(k) for k in keys]
    metas = [read_key(k) for k in meta_keys] or signers
    contract = contract_from_toml(policy.read_text())
    if contract.zone != zone_id:
        raise click.ClickException(
            f"{policy}: contract is for zone {contract.zone!r}, not {zone_id!r}"
        )
    authority = Authority.of([public_key(k) for k in signers], threshold or len(signers))
    desc = ZoneDescriptor(
        zone=zone_id,
        version=1,
        activation_epoch=activation_epoch,
        contracts=(contract.id,),
        validators=tuple(sorted({_hex(v, "--validator") for v in validators})),
        meta_authority=Authority.of([public_key(k) for k in metas], len(metas)),
        quorum=QuorumParams(mode=quorum_mode, n=n, k_min=k_min, health_ceiling=n),
        cross_zone=tuple(sorted(set(cross))),
    )
    bundle = ZoneBundle(
        zone=zone_id,
        authority=authority,
        descriptors=[desc.sign(*signers)],
        contracts=[contract.sign(*signers)],
        policy_refs=[make_policy_ref(zone_id, contract.id, signers[0])],
    )
    path = out or Path(f"zone-{zone_id}.cbor")
    if path.exists():
        raise click.ClickException(f"{path} exists; refusing to overwrite a zone file")
    save_zone(path, bundle)
    click.echo(
        f"wrote {path}: zone {zone_id} descriptor {desc.id.hex()[:16]} "
        f"contract {contract.id.hex()[:16]} ({len(contract.rules)} rules)"
    )


@zone.command("update")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key", "keys", required=True, multiple=True, type=KEY_OPTION, help="Authority key file(s)."
)
@click.option(
    "--activation-epoch",
    required=True,
    type=click.IntRange(min=0),
    help=f"When the new version governs; at least {PUBLISH_LEAD_EPOCHS} epochs from now.",
)
@click.option(
    "--now-epoch",
    type=click.IntRange(min=0),
    help="The publication epoch (default: from the wall clock, unix time / 10).",
)
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A further policy contract TOML to sign and make admissible.",
)
@click.option("--validator", "validators", multiple=True, help="Validator set (hex; replaces).")
@click.option(
    "--meta-key", "meta_keys", multiple=True, type=KEY_OPTION, help="New meta-authority key(s)."
)
@click.option("--quorum-mode", type=click.Choice(["global", "local"]))
@click.option("--n", "n", type=click.IntRange(1, 64), help="Quorum n (default: unchanged).")
@click.option("--k-min", type=click.IntRange(1, 64), help="Quorum k minimum (default: unchanged).")
@click.option("--cross-zone", "cross", multiple=True, help="Cross-zone set (replaces).")
@_user_errors
def zone_update(
    file: Path,
    keys: tuple[Path, ...],
    activation_epoch: int,
    now_epoch: int | None,
    policy: Path | None,
    validators: tuple[str, ...],
    meta_keys: tuple[Path, ...],
    quorum_mode: str | None,
    n: int | None,
    k_min: int | None,
    cross: tuple[str, ...],
) -> None:
    """Sign the next descriptor version of a zone file, activating at a later epoch.

    Fields not given are kept from the latest version. Refused unless the new version
    activates after the latest and at least two epochs after it is published (DESIGN 5).
    """
    bundle = load_zone(file)
    signers = [read_key(k) for k in keys]
    if not {public_key(k) for k in signers} <= set(bundle.authority.keys):
        raise click.ClickException("a --key is not a key of the zone authority")
    known = []
    for signed in bundle.descriptors:
        if not signed.authorised_by(bundle.authority):
            raise click.ClickException(f"{file}: a descriptor is not signed by the zone authority")
        known.append(ZoneDescriptor.from_cbor(signed.body))
    if not known:
        raise click.ClickException(f"{file} holds no descriptor (make one with `zone new`)")
    latest = max(known, key=lambda d: d.version)
    changes: dict[str, Any] = {}
    contract = None
    if policy is not None:
        contract = contract_from_toml(policy.read_text())
        if contract.zone != bundle.zone:
            raise click.ClickException(
                f"{policy}: contract is for zone {contract.zone!r}, not {bundle.zone!r}"
            )
        changes["contracts"] = tuple(sorted({*latest.contracts, contract.id}))
    if validators:
        changes["validators"] = tuple(sorted({_hex(v, "--validator") for v in validators}))
    if meta_keys:
        metas = [public_key(read_key(k)) for k in meta_keys]
        changes["meta_authority"] = Authority.of(metas, len(metas))
    if quorum_mode is not None or n is not None or k_min is not None:
        q = latest.quorum
        new_n = n if n is not None else q.n
        changes["quorum"] = QuorumParams(
            mode=quorum_mode or q.mode,
            n=new_n,
            k_min=k_min if k_min is not None else min(q.k_min, new_n),
            rotation_epochs=q.rotation_epochs,
            vote_timeout_epochs=q.vote_timeout_epochs,
            health_ceiling=new_n,
            local_min=min(q.local_min, new_n),
        )
    if cross:
        changes["cross_zone"] = tuple(sorted(set(cross)))
    desc = successor(latest, activation_epoch, **changes)
    published = now_epoch if now_epoch is not None else int(time.time()) // EPOCH_S
    check_publication(known, desc, published)
    signed = desc.sign(*signers)
    if not signed.authorised_by(bundle.authority):
        raise click.ClickException(
            f"needs {bundle.authority.threshold} authority keys, got {len(signers)}"
        )
    bundle.descriptors.append(signed)
    if contract is not None and contract.id not in latest.contracts:
        bundle.contracts.append(contract.sign(*signers))
        bundle.policy_refs.append(make_policy_ref(bundle.zone, contract.id, signers[0]))
    save_zone(file, bundle)
    click.echo(
        f"wrote {file}: zone {bundle.zone} descriptor v{desc.version} {desc.id.hex()[:16]} "
        f"activates at epoch {activation_epoch} (published at epoch {published})"
    )


@zone.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_user_errors
def zone_show(file: Path) -> None:
    """Print a zone file's descriptors, contracts, hosts and overrides, checking signatures."""
    bundle = load_zone(file)
    authority = bundle.authority
    table = Table(title=f"zone {escape(bundle.zone)}")
    for col in ("version", "activation", "id", "signed", "contracts", "validators", "quorum"):
        table.add_column(col)
    for signed in bundle.descriptors:
        desc = ZoneDescriptor.from_cbor(signed.body)
        q = desc.quorum
        table.add_row(
            str(desc.version),
            str(desc.activation_epoch),
            desc.id.hex()[:16],
            "yes" if signed.authorised_by(authority) else "NO",
            ", ".join(c.hex()[:12] for c in desc.contracts),
            str(len(desc.validators)),
            f"{q.mode} n={q.n} k>={q.k_min}",
        )
    console.print(table)
    for signed in bundle.contracts:
        _print_contract(Contract.from_cbor(signed.body), signed.authorised_by(authority))
    hosts = Table(title="hosts")
    for col in ("host key", "zones", "roles", "from epoch", "signed", "revoked"):
        hosts.add_column(col)
    revoked = {r.host_key for r in bundle.revocations if r.signature_ok()}
    for rec in bundle.host_records:
        ok = rec.authority in authority.keys and rec.signature_ok()
        hosts.add_row(
            rec.host_key.hex()[:16],
            ",".join(rec.zones),
            ",".join(rec.roles),
            str(rec.valid_from_epoch),
            "yes" if ok else "NO",
            "yes" if rec.host_key in revoked else "",
        )
    console.print(hosts)
    overrides = Table(title="overrides")
    for col in ("id", "action", "target", "epochs", "reason"):
        overrides.add_column(col)
    for signed in bundle.overrides:
        o = Override.from_cbor(signed.body)
        overrides.add_row(
            signed.id.hex()[:16],
            o.action.value,
            o.target.hex()[:16] or "(zone)",
            f"{o.from_epoch}..{o.expires_epoch}",
            escape(o.reason),
        )
    console.print(overrides)


def _print_contract(contract: Contract, signed: bool) -> None:
    table = Table(
        title=f"contract {escape(contract.name)} v{contract.version} "
        f"{contract.id.hex()[:16]} signed={'yes' if signed else 'NO'}"
    )
    for col in ("#", "rule", "verdict", "conditions", "reason"):
        table.add_column(col)
    for i, rule in enumerate(contract.rules):
        conds = "; ".join(f"{k}={_show(v)}" for k, v in rule.conditions)
        table.add_row(
            str(i), escape(rule.name), rule.verdict.value, escape(conds), escape(rule.reason)
        )
    table.add_row("-", "default", contract.default.value, "", escape(contract.default_reason))
    console.print(table)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    return str(value)


@zone.command("admit-host")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--key", required=True, type=KEY_OPTION, help="An authority key file.")
@click.option("--host-key", required=True, help="The host's signing key (hex).")
@click.option("--ddh", required=True, help="Genesis of the host's DDH slope (hex).")
@click.option("--role", "roles", multiple=True, help="Role granted: validator, anchor, ...")
@click.option("--addr", "addrs", multiple=True, help="Dialling hint (multiaddr).")
@click.option("--from-epoch", default=0, show_default=True, type=click.IntRange(min=0))
@click.option(
    "--zone",
    "zones",
    multiple=True,
    help="Another zone the record admits the host to (besides the zones of FILES).",
)
@_user_errors
def zone_admit_host(
    files: tuple[Path, ...],
    key: Path,
    host_key: str,
    ddh: str,
    roles: tuple[str, ...],
    addrs: tuple[str, ...],
    from_epoch: int,
    zones: tuple[str, ...],
) -> None:
    """Sign one host record admitting a host to the zones of FILES (and any --zone) and add
    it to each zone file.

    One record valid in several zones is what lets an agent migrate between them: the
    entries a host signs name its record by hash, so the destination's members must hold
    that same record to verify the agent's history. The key must be an authority key of
    every file's zone.
    """
    bundles = [load_zone(f) for f in files]
    signer = read_key(key)
    for file, bundle in zip(files, bundles, strict=True):
        if public_key(signer) not in bundle.authority.keys:
            raise click.ClickException(f"{key} is not a key of the authority of {file}")
    admitted = tuple(dict.fromkeys([*(b.zone for b in bundles), *zones]))
    grant = HostGrant(addrs=addrs, zones=admitted, roles=roles, valid_from_epoch=from_epoch)
    record = sign_record(_hex(host_key, "--host-key"), _hex(ddh, "--ddh"), grant, signer)
    for file, bundle in zip(files, bundles, strict=True):
        bundle.host_records.append(record)
        save_zone(file, bundle)
    click.echo(
        f"admitted host {host_key[:16]} to {', '.join(admitted)} (record {record.name.hex()[:16]})"
    )


@zone.command("revoke-host")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", required=True, type=KEY_OPTION, help="An authority key file.")
@click.option("--host-key", required=True, help="The host key to revoke (hex).")
@click.option("--epoch", required=True, type=click.IntRange(min=0), help="Effective epoch.")
@_user_errors
def zone_revoke_host(file: Path, key: Path, host_key: str, epoch: int) -> None:
    """Sign a revocation of a host key and add it to the zone file."""
    bundle = load_zone(file)
    signer = read_key(key)
    if public_key(signer) not in bundle.authority.keys:
        raise click.ClickException(f"{key} is not a key of the zone authority")
    bundle.revocations.append(sign_revocation(_hex(host_key, "--host-key"), epoch, signer))
    save_zone(file, bundle)
    click.echo(f"revoked host {host_key[:16]} from epoch {epoch}")


@zone.command("override")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--meta-key", "meta_keys", required=True, multiple=True, type=KEY_OPTION, help="Meta key(s)."
)
@click.option("--action", required=True, type=click.Choice([a.value for a in Action]))
@click.option("--target", default="", help="Agent scope (hex); empty for the whole zone.")
@click.option("--from-epoch", required=True, type=click.IntRange(min=0))
@click.option("--until-epoch", required=True, type=click.IntRange(min=1), help="Expiry (excl.).")
@click.option("--reason", required=True, help="Why (recorded in every audit entry).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the signed override alone here (for `meshnode override publish`).",
)
@_user_errors
def zone_override(
    file: Path,
    meta_keys: tuple[Path, ...],
    action: str,
    target: str,
    from_epoch: int,
    until_epoch: int,
    reason: str,
    out: Path | None,
) -> None:
    """Sign a meta-policy override (scoped, expiring) and add it to the zone file."""
    bundle = load_zone(file)
    if until_epoch <= from_epoch:
        raise click.ClickException("--until-epoch must be after --from-epoch")
    signers = [read_key(k) for k in meta_keys]
    latest = ZoneDescriptor.from_cbor(bundle.descriptors[-1].body)
    signed_by = Authority.of([public_key(k) for k in signers], len(signers))
    if not set(signed_by.keys) <= set(latest.meta_authority.keys):
        raise click.ClickException("a --meta-key is not in the zone's meta-authority")
    if len(signers) < latest.meta_authority.threshold:
        raise click.ClickException(f"needs {latest.meta_authority.threshold} meta-authority keys")
    override = Override(
        zone=bundle.zone,
        target=_hex(target, "--target") if target else b"",
        action=Action(action),
        from_epoch=from_epoch,
        expires_epoch=until_epoch,
        reason=reason,
    )
    signed = override.sign(*signers)
    bundle.overrides.append(signed)
    save_zone(file, bundle)
    if out is not None:
        out.write_bytes(signed.encode())
    click.echo(f"override {signed.id.hex()[:16]}: {action} until epoch {until_epoch}")


# -- policy ---------------------------------------------------------------------------------


@click.group("policy")
def policy() -> None:
    """Check agents against policy contracts."""


@policy.command("check")
@click.argument("contract", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("agent", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
@_user_errors
def policy_check(contract: Path, agent: Path, as_json: bool) -> None:
    """Explain which rule of CONTRACT.toml decides AGENT and why earlier rules did not match.

    Exits 0 for PERMIT, 1 for DENY, QUARANTINE or ESCALATE (and for agents that are not
    FULL), 2 on usage errors.
    """
    parsed = contract_from_toml(contract.read_text())
    with agent.open("rb") as fh:
        data = fh.read(MAX_AGENT_BYTES + 1)
    validation = validate_bytes(data)
    if validation.agent is None or validation.status is not ValidationStatus.FULL:
        first = validation.problems[0].describe() if validation.problems else "not FULL"
        raise click.ClickException(f"{agent}: agent is {validation.status.value}: {first}")
    facts = facts_of(validation.agent)
    evaluation = parsed.evaluate(facts)
    why = [parsed.rules[i].why_not(key, facts) for i, (_, key) in enumerate(evaluation.skipped)]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "verdict": evaluation.verdict.value,
                    "rule": evaluation.rule_name,
                    "rule_index": evaluation.rule_index,
                    "reason": evaluation.reason,
                    "skipped": [
                        {"rule": r, "failed": c, "why": w}
                        for (r, c), w in zip(evaluation.skipped, why, strict=True)
                    ],
                }
            )
        )
    else:
        table = Table(title=f"{escape(parsed.name)} v{parsed.version} vs {escape(agent.name)}")
        for col in ("#", "rule", "verdict", "result"):
            table.add_column(col)
        for i, (name, _) in enumerate(evaluation.skipped):
            table.add_row(str(i), escape(name), parsed.rules[i].verdict.value, escape(why[i]))
        idx = str(evaluation.rule_index) if evaluation.rule_index >= 0 else "-"
        table.add_row(idx, escape(evaluation.rule_name), evaluation.verdict.value, "MATCHED")
        console.print(table)
        console.print(escape(evaluation.explain()))
    if evaluation.verdict is not PolicyVerdict.PERMIT:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    """Add ``keygen``, ``zone`` and ``policy`` to the ``meshnode`` group."""
    main.add_command(keygen)
    main.add_command(zone)
    main.add_command(policy)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def _standalone() -> None:
    """meshnode governance commands (also available as ``meshnode keygen|zone|policy``)."""


register(_standalone)

__all__ = ["register"]

if __name__ == "__main__":
    _standalone()
