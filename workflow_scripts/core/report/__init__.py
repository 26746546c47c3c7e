"""What the experiments' reports share: loading and aggregating runs, model selection, tables, figures.

Importing this package selects matplotlib's headless Agg backend, once for every report: the report jobs
run on compute nodes without a display, and each report imports one of these modules, so none of them has
to set the backend itself before importing pyplot. (``matplotlib.use`` also switches a pyplot imported
earlier, so the order of a report's imports does not matter.)
"""
import matplotlib

matplotlib.use("Agg")
