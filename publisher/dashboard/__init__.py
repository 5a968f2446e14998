"""The owner's dashboard: the figures of :mod:`publisher.tracking.report` as sections (queries),
charts, pages on the web layer (``/dashboard``), one self-contained HTML file, and the digest.

- :mod:`~publisher.dashboard.queries` builds every section for a period and filters;
- :mod:`~publisher.dashboard.stats` holds the intervals, verdicts and variant probabilities;
- :mod:`~publisher.dashboard.view` formats them for a language, :mod:`~publisher.dashboard.charts`
  draws them, :mod:`~publisher.dashboard.pages` renders them;
- :mod:`~publisher.dashboard.web`, :mod:`~publisher.dashboard.export` and
  :mod:`~publisher.dashboard.digest` serve them as a page, a file and an email.
"""
