"""The budget report's machinery; the public entry point is :func:`bayesscale.report` (:mod:`bayesscale.reporting`).

The report is made in four steps, one module each:

:mod:`~bayesscale._report.facts`
    gathers every number and sentence from the posterior, one function per
    section; the result is exactly what ``report.json`` holds.
:mod:`~bayesscale._report.figures`
    draws the figures to PNG bytes.
:mod:`~bayesscale._report.sections` and :mod:`~bayesscale._report.doc`
    turn the facts into a neutral document, one function per section, and
    write that one document as HTML and as Markdown.
:mod:`~bayesscale._report.publish`
    writes the directory atomically (aside, then swapped into place).

:mod:`~bayesscale._report.fmt` holds the number formatting all of them share.
"""
