"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) and where a report answers it.

Each item names the report section (its anchor) that answers it, or says that the item belongs to
the authors' manuscript (ethics, funding, registration …): software cannot answer those.
"""

from __future__ import annotations

import html

MANUSCRIPT = None  # the item is the authors' to report, not the software's

# (item, topic, what the item asks, the sections answering it in order of preference)
ITEMS: list[tuple[str, str, str, tuple[str, ...] | None]] = [
    ("1", "Title", "development/evaluation of a prediction model, population, outcome",
     ("summary",)),
    ("2", "Abstract", "structured summary", ("summary",)),
    ("3a", "Healthcare context", "setting and rationale", MANUSCRIPT),
    ("3b", "Target population", "intended population and users", MANUSCRIPT),
    ("3c", "Health inequalities", "known inequalities between groups", MANUSCRIPT),
    ("4", "Objectives", "development, evaluation or both", ("methods",)),
    ("5a", "Data sources", "source of the data", ("data",)),
    ("5b", "Data dates", "start and end of the diaries, end of follow-up", ("data",)),
    ("6a", "Setting", "where the data come from", MANUSCRIPT),
    ("6b", "Eligibility", "inclusion and exclusion criteria", MANUSCRIPT),
    ("6c", "Treatments", "treatments received and how they were handled",
     ("treatments", "data")),
    ("7", "Data preparation", "pre-processing and quality checks", ("data",)),
    ("8a", "Outcome", "definition of the outcome and time horizon", ("data",)),
    ("8b", "Outcome assessors", "qualifications of outcome assessors", ("data",)),
    ("8c", "Outcome blinding", "blinding of outcome assessment", ("data",)),
    ("9a", "Predictors", "choice of predictors", ("methods",)),
    ("9b", "Predictor definitions", "definition and timing of measurement", ("methods",)),
    ("9c", "Predictor assessors", "qualifications and blinding of predictor assessment",
     ("methods",)),
    ("10", "Sample size", "how the study size was arrived at", ("data",)),
    ("11", "Missing data", "how missing data were handled", ("data",)),
    ("12a", "Data use", "development and evaluation data, their split", ("validation",)),
    ("12b", "Predictor handling", "functional forms, scaling, transformations",
     ("methods", "sensitivities")),
    ("12c", "Model", "model type, building steps, hyper-parameters, internal validation",
     ("methods", "diagnostics")),
    ("12d", "Heterogeneity", "heterogeneity across clusters (patients)",
     ("sensitivities", "methods")),
    ("12e", "Performance measures", "measures and their rationale", ("validation",)),
    ("12f", "Model updating", "recalibration or updating", ("methods",)),
    ("12g", "Predictions", "how predictions are calculated for evaluation", ("validation",)),
    ("13", "Class imbalance", "methods for class imbalance", ("methods",)),
    ("14", "Fairness", "methods to address fairness", ("validation",)),
    ("15", "Model output", "output of the model (probabilities, thresholds)",
     ("methods", "validation")),
    ("16", "Training versus evaluation", "differences between the data sets", ("validation",)),
    ("17", "Ethical approval", "ethics committee and consent", MANUSCRIPT),
    ("18a", "Funding", "sources of funding", MANUSCRIPT),
    ("18b", "Conflicts of interest", "declarations", MANUSCRIPT),
    ("18c", "Protocol", "where the protocol can be read", MANUSCRIPT),
    ("18d", "Registration", "study registration", MANUSCRIPT),
    ("18e", "Data sharing", "availability of the data", MANUSCRIPT),
    ("18f", "Code sharing", "availability of the code", ("methods",)),
    ("19", "Patient and public involvement", "involvement in the study", MANUSCRIPT),
    ("20a", "Participants", "flow of participants, numbers with the outcome", ("data",)),
    ("20b", "Characteristics", "characteristics, predictors, treatments, missing data",
     ("data", "treatments")),
    ("20c", "Data comparison", "development against evaluation data", ("validation",)),
    ("21", "Model development", "participants and events in each analysis",
     ("data", "validation")),
    ("22", "Model specification", "details to compute predictions", ("methods",)),
    ("23a", "Model performance", "performance with confidence intervals, in subgroups",
     ("validation",)),
    ("23b", "Heterogeneity of performance", "performance across clusters (patients)",
     ("validation",)),
    ("24", "Model updating", "results of updating", ("validation",)),
    ("25", "Interpretation", "overall interpretation", ("summary",)),
    ("26", "Limitations", "limitations of the study", ("validation", "checks")),
    ("27a", "Usability: poor data", "handling of poor or missing data in use", ("data",)),
    ("27b", "Usability: users", "user interaction and expertise needed", ("methods",)),
    ("27c", "Future research", "next steps, generalisability", MANUSCRIPT),
]


def checklist_rows(sections: dict[str, str]) -> list[dict]:
    """Per item: ``item, topic, asks`` and ``answered`` (a link to the first present section).

    ``sections`` maps the report's section anchors to their titles. An item whose sections are
    all absent says which input would add them.
    """
    rows = []
    for item, topic, asks, where in ITEMS:
        if where is None:
            answered = "the authors' manuscript (not produced by software)"
        else:
            present = [k for k in where if k in sections]
            if present:
                answered = ", ".join(f'<a href="#{k}">{html.escape(sections[k])}</a>'
                                     for k in present)
            else:
                answered = "not in this report: pass a backtest (--backtest)"
        rows.append({"item": item, "topic": topic, "asks": asks, "answered": answered})
    return rows


def checklist_html(sections: dict[str, str]) -> str:
    """The checklist as an HTML table (links into the report)."""
    head = "".join(f"<th class=\"text\">{h}</th>" for h in
                   ("Item", "Topic", "What it asks", "Answered in"))
    body = "".join(
        f'<tr class="tripod-item" data-item="{r["item"]}"><td>{r["item"]}</td>'
        f'<td class="text">{html.escape(r["topic"])}</td>'
        f'<td class="text">{html.escape(r["asks"])}</td><td class="text">{r["answered"]}</td></tr>'
        for r in checklist_rows(sections))
    return (f'<table id="tripod-checklist"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")
