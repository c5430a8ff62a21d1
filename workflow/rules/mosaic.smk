# Image mosaics (Rogez & Schmid): for each of a share of the training crops, a mosaic of its
# pose and view stitched from the crops of other clips (or from LSP's photographs, downloaded), with and without the pose-aware blend;
# the K-way pose classifier and the regression baseline trained on the real crops, the mosaics,
# the same clips rendered again ("surreal") and their mixes, measured on the test crops as the
# evaluation tables' rows (pipeline.evaluation.tables: mosaic_*), beside their references.


rule make_lsp_pool:
    input:
        "resources/lsp",
    output:
        directory("results/mosaic/pool/lsp"),
    params:
        size=config["mosaic"]["size"],
        tracking=tracking("make_lsp_pool"),
        code=code_version("mosaic"),
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "logs/make_lsp_pool.log",
    benchmark:
        "logs/benchmarks/make_lsp_pool.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic pool --lsp {input:q} --size {params.size:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule make_mosaics:
    input:
        pool=mosaic_pool(),
        poses=bodynet_samples("train_split"),
    output:
        mosaics=directory("results/mosaic/{mosaics}"),
    wildcard_constraints:
        mosaics="|".join(MOSAIC_FOLDERS.values()),
    params:
        options=mosaic_options,
        seed=config["seed"],
        tracking=tracking("make_mosaics"),
        code=code_version("mosaic"),
    threads: config["mosaic"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "logs/make_mosaics/{mosaics}.log",
    benchmark:
        "logs/benchmarks/make_mosaics/{mosaics}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic make --pool {input.pool:q} --poses {input.poses:q} {params.options} "
        "--seed {params.seed:q} --out {output.mosaics:q} {params.tracking} > {log:q} 2>&1"


rule train_pose_classifier:
    input:
        unpack(pose_classifier_inputs),
    output:
        summary="results/evaluation/mosaic/{run}/summary.json",
        images="results/evaluation/mosaic/{run}/images.csv",
    wildcard_constraints:
        run=POSE_CLASSIFIER,
    params:
        out=output_folder("summary"),
        options=pose_classifier_options,
        size=config["mosaic"]["size"],
        seed=config["seed"],
        tracking=tracking("train_pose_classifier"),
        code=code_version("mosaic"),
    threads: config["mosaic"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        "logs/train_pose_classifier/{run}.log",
    benchmark:
        "logs/benchmarks/train_pose_classifier/{run}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic train {params.options} --mosaics {input.mosaics:q} --real {input.real:q} "
        "--val {input.validation:q} --size {params.size:q} --seed {params.seed:q} --threads {threads} "
        "--out {params.out:q} {params.tracking} > {log:q} 2>&1"


rule mosaic_references:
    input:
        mosaics=f"results/mosaic/{MOSAIC_FOLDERS['mosaic']}",
        real=bodynet_samples("train_split"),
        validation=bodynet_samples("validation_split"),
    output:
        constant="results/evaluation/mosaic/reference/constant/summary.json",
        oracle="results/evaluation/mosaic/reference/oracle/summary.json",
    params:
        out=lambda wildcards, output: str(Path(output.constant).parents[1]),
        classes=config["mosaic"]["classifier"]["classes"],
        size=config["mosaic"]["size"],
        seed=config["seed"],
        tracking=tracking("mosaic_references"),
        code=code_version("mosaic"),
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/mosaic_references.log",
    benchmark:
        "logs/benchmarks/mosaic_references.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic references --mosaics {input.mosaics:q} --real {input.real:q} --val {input.validation:q} "
        "--classes {params.classes:q} --size {params.size:q} --seed {params.seed:q} --out {params.out:q} "
        "{params.tracking} > {log:q} 2>&1"


rule plot_mosaic_sheet:
    input:
        mosaics=f"results/mosaic/{MOSAIC_FOLDERS['mosaic']}",
        unblended=f"results/mosaic/{MOSAIC_FOLDERS['unblended']}",
        real=bodynet_samples("train_split"),
        surreal=surreal_samples(),
        pool=mosaic_pool(),
    output:
        report("results/mosaic/sheet.png", caption="../report/mosaic_sheet.rst", category="Mosaics"),
    params:
        engine=cli_options({k: v for k, v in config["mosaic"].items() if k in ("pool_images", "size", "sigma", "alpha", "beta")}),
        seed=config["seed"],
        tracking=tracking("plot_mosaic_sheet"),
        code=code_version("mosaic"),
    log:
        "logs/plot_mosaic_sheet.log",
    benchmark:
        "logs/benchmarks/plot_mosaic_sheet.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic sheet --mosaics {input.mosaics:q} --unblended {input.unblended:q} --real {input.real:q} "
        "--surreal {input.surreal:q} --pool {input.pool:q} {params.engine} --seed {params.seed:q} --out {output:q} "
        "{params.tracking} > {log:q} 2>&1"
