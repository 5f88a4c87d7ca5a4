# knowledge-entropy: from pretraining checkpoints to entropy, continual-learning tables and figures.
# Target rules: all, entropy, continual, resuscitation, figures, continual_figures, table2, and each figure
# of kentropy.report.figure_registry by name (figure3, figure4, ..., retention). See README.md.
from snakemake.utils import min_version

from kentropy.core.config import ConfigError, load_config_file

min_version("9.0")


# A --configfile on the command line is the whole config (the paper configs stand alone); otherwise the
# embedded default. Snakemake would otherwise deep-merge the two, mixing the tiny model into every run.
# Every config file is read again with kentropy's strict YAML loader before anything is validated: malformed
# YAML stops with the file, line and column (Snakemake's own parser names neither), a key written twice
# with both lines, an alias bomb in one line and at once (kentropy.core.config.load_config_file).
DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"
try:
    for path in workflow.overwrite_configfiles or [DEFAULT_CONFIG]:
        load_config_file(path)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
if not workflow.overwrite_configfiles:

    configfile: DEFAULT_CONFIG  # found from any --directory


include: "workflow/rules/warm.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/checkpoints.smk"
include: "workflow/rules/entropy.smk"
include: "workflow/rules/continual.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/resuscitate.smk"
include: "workflow/rules/facts.smk"
include: "workflow/rules/lab.smk"


onstart:
    WARM.start(*warm_server_settings())


onsuccess:
    WARM.stop()


onerror:
    WARM.stop()


rule all:
    default_target: True
    input:
        rules.entropy.input,
        rules.continual.input,
        rules.figures.input,
        rules.continual_figures.input,
        branch(RESUSCITATION is not None, then=rules.resuscitation.input, otherwise=[]),
        branch("paper_comparison" in config, then=rules.paper_comparison.output, otherwise=[]),
        branch(FACTS is not None, then=rules.facts.input, otherwise=[]),
