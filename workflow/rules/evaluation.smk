# Every trained network measured on the test images: with a body fitted (BodyNet's fit to
# the voxels, or a baseline) or on its intermediate tasks alone; then the paper's tables.
BODY_EVALUATIONS = "|".join(
    [stage for stage in STAGE_INITS if stage.startswith(("voxels", "end_to_end"))]
    + ["shape_regression", "smplify", "inputs/voxels/[a-z0-9+]+"]
)


# The body fit's pose prior, learnt from the training split's motions (never the test's).
rule learn_pose_prior:
    input:
        "resources/motions/train.npz",
    output:
        POSE_PRIOR,
    params:
        components=config["evaluation"]["fit"]["prior_components"],
        seed=config["seed"],
        tracking=tracking("learn_pose_prior"),
        code=code_version("evaluation"),
    log:
        "logs/learn_pose_prior.log",
    benchmark:
        "logs/benchmarks/learn_pose_prior.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation prior --motions {input:q} --components {params.components:q} "
        "--seed {params.seed:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule evaluate_body_fit:
    input:
        model=evaluated_model,
        samples=bodynet_samples("validation_split"),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        pose_prior=pose_prior_input(),
        exemplars=readout_input(bodynet_samples("train_split")),
    output:
        images="results/evaluation/{evaluation}/images.csv",
        summary="results/evaluation/{evaluation}/summary.json",
        sheet=report(
            "results/evaluation/{evaluation}/sheet.png",
            caption="../report/evaluation_sheet.rst",
            category="2. BodyNet evaluation",
            subcategory="qualitative",
            labels={"evaluation": "{evaluation}"},
        ),
    wildcard_constraints:
        evaluation=BODY_EVALUATIONS,
    params:
        out=output_folder("images"),
        method=lambda wildcards: "--method smplify" if wildcards.evaluation == "smplify" else "",
        models=body_model_options("--body-model"),
        options=cli_options({key: config["evaluation"][key] for key in ("batch_size", "examples")}),
        fit=fit_options(placement=True),
        readout=readout_options(bodynet_samples("train_split")),
        device=config["bodynet"]["device"],
        tracking=tracking("evaluate_body_fit"),
        code=code_version("evaluation"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPU,
    log:
        "logs/evaluate_body_fit/{evaluation}.log",
    benchmark:
        "logs/benchmarks/evaluate_body_fit/{evaluation}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation network --model {input.model:q} {params.method} --samples {input.samples:q} "
        "{params.models} --out {params.out:q} {params.options} {params.fit} "
        "{params.readout} --device {params.device:q} --threads {threads} {params.tracking} > {log:q} 2>&1"


rule evaluate_reference:
    input:
        samples=bodynet_samples("validation_split"),
        train=bodynet_samples("train_split"),
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        pose_prior=pose_prior_input(),
    output:
        images="results/evaluation/reference/{reference}/images.csv",
        summary="results/evaluation/reference/{reference}/summary.json",
        sheet="results/evaluation/reference/{reference}/sheet.png",
    wildcard_constraints:
        reference="|".join(REFERENCES),
    params:
        out=output_folder("images"),
        models=body_model_options("--body-model"),
        options=cli_options({key: config["evaluation"][key] for key in ("batch_size", "examples")}),
        fit=fit_options(placement=True),
        readout=readout_options(bodynet_samples("train_split")),
        train_images=config["evaluation"]["reference_train_images"],
        seed=config["seed"],
        device=config["bodynet"]["device"],
        tracking=tracking("evaluate_reference"),
        code=code_version("evaluation"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=GPU,
    log:
        "logs/evaluate_reference/{reference}.log",
    benchmark:
        "logs/benchmarks/evaluate_reference/{reference}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation reference --kind {wildcards.reference:q} --samples {input.samples:q} "
        "--train-samples {input.train:q} --train-images {params.train_images:q} --seed {params.seed:q} {params.models} "
        "--out {params.out:q} {params.options} {params.fit} {params.readout} "
        "--device {params.device:q} --threads {threads} {params.tracking} > {log:q} 2>&1"


rule evaluate_tasks:
    input:
        model=evaluated_model,
        samples=evaluation_samples,
        exemplars=readout_input(bodynet_samples("train_split")),
    output:
        images="results/evaluation/{evaluation}/images.csv",
        summary="results/evaluation/{evaluation}/summary.json",
    wildcard_constraints:
        evaluation=f"pose2d|segm|pose3d|depth|part_voxels|part_voxels_fvsv|inputs/pose3d/[a-z0-9+]+|data_study/({DATA_STUDIES})"
        "|(depth|data_study/lossless)/on_(mp4|lossless)",
    params:
        out=output_folder("images"),
        batch=config["evaluation"]["batch_size"],
        readout=readout_options(bodynet_samples("train_split")),
        device=config["bodynet"]["device"],
        tracking=tracking("evaluate_tasks"),
        code=code_version("evaluation"),
    threads: config["evaluation"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    log:
        "logs/evaluate_tasks/{evaluation}.log",
    benchmark:
        "logs/benchmarks/evaluate_tasks/{evaluation}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation network --model {input.model:q} --method tasks --samples {input.samples:q} "
        "--out {params.out:q} --batch-size {params.batch:q} {params.readout} "
        "--device {params.device:q} --threads {threads} {params.tracking} > {log:q} 2>&1"


rule tabulate_evaluation:
    input:
        unpack(table_summaries),
    output:
        table=report(
            "results/{table}.csv",
            caption="../report/evaluation_table.rst",
            category="1. Tables",
            labels={"table": "{table}", "figure": "table"},
        ),
        figure=report(
            "results/evaluation/{table}.png",
            caption="../report/evaluation_bars.rst",
            category="1. Tables",
            labels={"table": "{table}", "figure": "bars"},
        ),
        orderings="results/evaluation/{table}_orderings.csv",
    wildcard_constraints:
        table="|".join(TABLES),
    params:
        summaries=lambda wildcards, input: keyed("--summary", input.items()),
        seed=config["seed"],
        tracking=tracking("tabulate_evaluation"),
        code=code_version("evaluation"),
    log:
        "logs/tabulate_evaluation/{table}.log",
    benchmark:
        "logs/benchmarks/tabulate_evaluation/{table}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation table --table {wildcards.table:q} {params.summaries} --out {output.table:q} "
        "--figure {output.figure:q} --orderings {output.orderings:q} --seed {params.seed:q} {params.tracking} > {log:q} 2>&1"


rule results_page:
    input:
        tables=expand("results/{table}.csv", table=TABLES),
        orderings=expand("results/evaluation/{table}_orderings.csv", table=TABLES),
    output:
        "results/results.md",
    params:
        tables=lambda wildcards, input: keyed("--table", zip(TABLES, input.tables)),
        tracking=tracking("results_page"),
        code=code_version("evaluation"),
    log:
        "logs/results_page.log",
    benchmark:
        "logs/benchmarks/results_page.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.evaluation page {params.tables} --out {output:q} {params.tracking} > {log:q} 2>&1"
