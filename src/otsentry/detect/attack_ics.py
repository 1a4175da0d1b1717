"""MITRE ATT&CK for ICS: techniques and tactics, the table Sigma tags are checked against offline.

Source: MITRE ATT&CK for ICS matrix (attack.mitre.org/matrices/ics/, ics-attack v15), technique ids,
names and the tactics each technique serves. Deprecated/revoked ids (T0808, T0810, T0818, T0824, T0825,
T0833, T0841, T0850, T0854, T0870, T0875, T0876) are deliberately absent: a rule tagged with one fails
``otsentry rules check``. Sigma writes these as ``attack.t0855`` and tactics as
``attack.impair-process-control`` (no ``ics`` infix; see ISSUE-NOTES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FRAMEWORK = "MITRE ATT&CK for ICS"

# tactic id -> (Sigma tag suffix, display name)
TACTICS: dict[str, tuple[str, str]] = {
    "TA0108": ("initial-access", "Initial Access"),
    "TA0104": ("execution", "Execution"),
    "TA0110": ("persistence", "Persistence"),
    "TA0111": ("privilege-escalation", "Privilege Escalation"),
    "TA0103": ("evasion", "Evasion"),
    "TA0102": ("discovery", "Discovery"),
    "TA0109": ("lateral-movement", "Lateral Movement"),
    "TA0100": ("collection", "Collection"),
    "TA0101": ("command-and-control", "Command and Control"),
    "TA0107": ("inhibit-response-function", "Inhibit Response Function"),
    "TA0106": ("impair-process-control", "Impair Process Control"),
    "TA0105": ("impact", "Impact"),
}
TACTIC_BY_TAG: dict[str, str] = {tag: tid for tid, (tag, _name) in TACTICS.items()}

_IA, _EX, _PE, _PR, _EV, _DI = "TA0108", "TA0104", "TA0110", "TA0111", "TA0103", "TA0102"
_LM, _CO, _C2, _IRF, _IPC, _IM = "TA0109", "TA0100", "TA0101", "TA0107", "TA0106", "TA0105"

# technique id -> (name, tactic ids)
TECHNIQUES: dict[str, tuple[str, tuple[str, ...]]] = {
    "T0800": ("Activate Firmware Update Mode", (_IRF,)),
    "T0801": ("Monitor Process State", (_CO,)),
    "T0802": ("Automated Collection", (_CO,)),
    "T0803": ("Block Command Message", (_IRF,)),
    "T0804": ("Block Reporting Message", (_IRF,)),
    "T0805": ("Block Serial COM", (_IRF,)),
    "T0806": ("Brute Force I/O", (_IPC,)),
    "T0807": ("Command-Line Interface", (_EX,)),
    "T0809": ("Data Destruction", (_IRF,)),
    "T0811": ("Data from Information Repositories", (_CO,)),
    "T0812": ("Default Credentials", (_LM,)),
    "T0813": ("Denial of Control", (_IM,)),
    "T0814": ("Denial of Service", (_IRF,)),
    "T0815": ("Denial of View", (_IM,)),
    "T0816": ("Device Restart/Shutdown", (_IRF,)),
    "T0817": ("Drive-by Compromise", (_IA,)),
    "T0819": ("Exploit Public-Facing Application", (_IA,)),
    "T0820": ("Exploitation for Evasion", (_EV,)),
    "T0821": ("Modify Controller Tasking", (_EX,)),
    "T0822": ("External Remote Services", (_IA,)),
    "T0823": ("Graphical User Interface", (_EX,)),
    "T0826": ("Loss of Availability", (_IM,)),
    "T0827": ("Loss of Control", (_IM,)),
    "T0828": ("Loss of Productivity and Revenue", (_IM,)),
    "T0829": ("Loss of View", (_IM,)),
    "T0830": ("Adversary-in-the-Middle", (_CO,)),
    "T0831": ("Manipulation of Control", (_IM,)),
    "T0832": ("Manipulation of View", (_IM,)),
    "T0834": ("Native API", (_EX,)),
    "T0835": ("Manipulate I/O Image", (_IRF,)),
    "T0836": ("Modify Parameter", (_IPC,)),
    "T0837": ("Loss of Protection", (_IM,)),
    "T0838": ("Modify Alarm Settings", (_IRF,)),
    "T0839": ("Module Firmware", (_PE, _IPC)),
    "T0840": ("Network Connection Enumeration", (_DI,)),
    "T0842": ("Network Sniffing", (_DI,)),
    "T0843": ("Program Download", (_LM,)),
    "T0844": ("Program Organization Units", (_EX,)),
    "T0845": ("Program Upload", (_CO,)),
    "T0846": ("Remote System Discovery", (_DI,)),
    "T0847": ("Replication Through Removable Media", (_IA,)),
    "T0848": ("Rogue Master", (_IA,)),
    "T0849": ("Masquerading", (_EV,)),
    "T0851": ("Rootkit", (_EV, _IRF)),
    "T0852": ("Screen Capture", (_CO,)),
    "T0853": ("Scripting", (_EX,)),
    "T0855": ("Unauthorized Command Message", (_IPC,)),
    "T0856": ("Spoof Reporting Message", (_EV, _IPC)),
    "T0857": ("System Firmware", (_PE, _IRF)),
    "T0858": ("Change Operating Mode", (_EX, _EV)),
    "T0859": ("Valid Accounts", (_PE, _LM)),
    "T0860": ("Wireless Compromise", (_IA,)),
    "T0861": ("Point & Tag Identification", (_CO,)),
    "T0862": ("Supply Chain Compromise", (_IA,)),
    "T0863": ("User Execution", (_EX,)),
    "T0864": ("Transient Cyber Asset", (_IA,)),
    "T0865": ("Spearphishing Attachment", (_IA,)),
    "T0866": ("Exploitation of Remote Services", (_IA, _LM)),
    "T0867": ("Lateral Tool Transfer", (_LM,)),
    "T0868": ("Detect Operating Mode", (_CO,)),
    "T0869": ("Standard Application Layer Protocol", (_C2,)),
    "T0871": ("Execution through API", (_EX,)),
    "T0872": ("Indicator Removal on Host", (_EV,)),
    "T0873": ("Project File Infection", (_PE,)),
    "T0874": ("Hooking", (_EX, _PR)),
    "T0877": ("I/O Image", (_CO,)),
    "T0878": ("Alarm Suppression", (_IRF,)),
    "T0879": ("Damage to Property", (_IM,)),
    "T0880": ("Loss of Safety", (_IM,)),
    "T0881": ("Service Stop", (_IRF,)),
    "T0882": ("Theft of Operational Information", (_IM,)),
    "T0883": ("Internet Accessible Device", (_IA,)),
    "T0884": ("Connection Proxy", (_C2,)),
    "T0885": ("Commonly Used Port", (_C2,)),
    "T0886": ("Remote Services", (_IA, _LM)),
    "T0887": ("Wireless Sniffing", (_DI, _CO)),
    "T0888": ("Remote System Information Discovery", (_DI,)),
    "T0889": ("Modify Program", (_PE,)),
    "T0890": ("Exploitation for Privilege Escalation", (_PR,)),
    "T0891": ("Hardcoded Credentials", (_LM, _PE)),
    "T0892": ("Change Credential", (_IRF,)),
    "T0893": ("Data from Local System", (_CO,)),
    "T0894": ("System Binary Proxy Execution", (_EV,)),
    "T0895": ("Autorun Image", (_EX,)),
}

_TECHNIQUE_TAG = re.compile(r"t0\d{3}")
_OTHER_ATTACK_TAG = re.compile(r"[gs]\d{4}")  # group and software ids pass through unchecked


@dataclass(frozen=True)
class ThreatInfo:
    """ECS ``threat.*`` fields derived from a rule's ``attack.*`` tags."""

    technique_ids: tuple[str, ...]
    technique_names: tuple[str, ...]
    tactic_ids: tuple[str, ...]
    tactic_names: tuple[str, ...]

    def fields(self) -> dict[str, object]:
        if not self.technique_ids and not self.tactic_ids:
            return {}
        out: dict[str, object] = {"threat.framework": FRAMEWORK}
        if self.technique_ids:
            out["threat.technique.id"] = list(self.technique_ids)
            out["threat.technique.name"] = list(self.technique_names)
        if self.tactic_ids:
            out["threat.tactic.id"] = list(self.tactic_ids)
            out["threat.tactic.name"] = list(self.tactic_names)
        return out


def check_attack_tag(name: str) -> str | None:
    """Problem with the tag ``attack.<name>`` (lower case as Sigma writes it), or None when valid."""
    if _TECHNIQUE_TAG.fullmatch(name):
        if name.upper() not in TECHNIQUES:
            return f"attack.{name}: not an ATT&CK for ICS technique (deprecated, or an Enterprise id)"
        return None
    if name in TACTIC_BY_TAG or _OTHER_ATTACK_TAG.fullmatch(name):
        return None
    if name.startswith("ics."):
        return f"attack.{name}: write ATT&CK tags without the 'ics.' infix (attack.{name[4:]})"
    return f"attack.{name}: neither an ATT&CK for ICS technique (attack.t0xxx) nor an ICS tactic"


def threat_info(attack_tags: list[str]) -> ThreatInfo:
    """Techniques from ``t0xxx`` tags; tactics from tactic tags, else from the techniques' tactics."""
    technique_ids: list[str] = []
    tactic_ids: list[str] = []
    for name in attack_tags:
        upper = name.upper()
        if upper in TECHNIQUES and upper not in technique_ids:
            technique_ids.append(upper)
        elif name in TACTIC_BY_TAG and TACTIC_BY_TAG[name] not in tactic_ids:
            tactic_ids.append(TACTIC_BY_TAG[name])
    if not tactic_ids:
        for tid in technique_ids:
            for tactic in TECHNIQUES[tid][1]:
                if tactic not in tactic_ids:
                    tactic_ids.append(tactic)
    return ThreatInfo(
        tuple(technique_ids),
        tuple(TECHNIQUES[t][0] for t in technique_ids),
        tuple(tactic_ids),
        tuple(TACTICS[t][1] for t in tactic_ids),
    )
