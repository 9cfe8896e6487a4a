"""`vigil incident`: open, list, show, the workflow's refusals with their reason, tasks, comments, the
post-mortem's separation of duties, and the SLA pass, against a real store."""

from __future__ import annotations

import json
from pathlib import Path

from pypdf import PdfReader

from .conftest import Cli


def test_an_operator_works_an_incident_from_the_shell(cli: Cli) -> None:
    opened = cli.ok("incident", "create", "--title", "Web shell on portal", "--type", "web_attack",
                    "--severity", "P1", "--team", "CSIRT")
    ref = opened.output.split()[1]
    assert ref.startswith("INC-")
    listed = cli.ok("incident", "list", "--severity", "P1")
    assert ref in listed.output and "1 of 1 incidents" in listed.output
    refused = cli("incident", "transition", ref, "contain")
    assert refused.exit_code == 1
    assert "required tasks of identify are not done: Classify the incident" in refused.output
    tasks = json.loads(cli.ok("incident", "task", "list", ref, "--json").output)
    cli.ok("incident", "task", "done", ref, str(tasks[0]["id"]))
    assert f"{ref} is now in contain" in cli.ok("incident", "transition", ref, "contain").output
    assert "1 mentioned" not in cli.ok("incident", "comment", ref, "web shell removed by @nobody-here").output
    shown = json.loads(cli.ok("incident", "show", ref, "--json").output)
    assert shown["phase"] == "contain" and shown["acknowledged_at"] is not None
    assert [p["phase"] for p in shown["phase_times"]] == ["identify", "contain"]
    assert "new SLA records" in cli.ok("incident", "sla-check").output
    cli.ok("incident", "postmortem", "draft", ref)
    cli.ok("incident", "postmortem", "submit", ref)
    same_author = cli("incident", "postmortem", "approve", ref)
    assert same_author.exit_code == 1 and "author of a post-mortem cannot approve it" in same_author.output
    assert cli("incident", "show", "INC-1999-9999").exit_code == 1


def test_the_incident_report_is_written_as_markdown_or_pdf(cli: Cli, tmp_path: Path) -> None:
    ref = cli.ok("incident", "create", "--title", "钓鱼邮件 wave", "--type", "phishing",
                 "--severity", "P2").output.split()[1]
    markdown = cli.ok("incident", "report", ref)
    assert markdown.output.startswith(f"# {ref}: 钓鱼邮件 wave") and "| Severity | P2 |" in markdown.output
    written = cli.ok("incident", "report", ref, "--output", str(tmp_path / "report.pdf"))
    assert f"the report is in {tmp_path / 'report.pdf'}" in written.output
    text = "\n".join(page.extract_text() for page in PdfReader(tmp_path / "report.pdf").pages)
    assert f"{ref}: 钓鱼邮件 wave" in text and "Severity" in text
    refused = cli("incident", "report", ref, "--pdf")
    assert refused.exit_code != 0 and "--output" in refused.output
    assert cli("incident", "report", "INC-1999-9999").exit_code == 1
