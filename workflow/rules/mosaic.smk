# Image mosaics (Rogez & Schmid): training images stitched from the training crops for the
# training split's 3D poses seen from random views, and the K-way 3D pose classifier and the
# regression baseline trained on the mosaics or on the rendered crops, measured on the test crops.

MOSAIC_SOURCES = ("mosaic", "rendered")
POSE_HEADS = ("classification", "regression")


rule make_mosaics:
    input:
        pool=bodynet_samples("train_split"),
    output:
        mosaics=directory("results/mosaic/train"),
    params:
        options=cli_options({k: v for k, v in config["mosaic"].items() if k not in ("classifier", "threads", "blend")}),
        blend="--blend" if config["mosaic"]["blend"] else "--no-blend",
        seed=config["seed"],
        tracking=tracking("make_mosaics"),
        code=code_version("mosaic"),
    threads: config["mosaic"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "logs/make_mosaics.log",
    benchmark:
        "logs/benchmarks/make_mosaics.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic make --pool {input.pool:q} --poses {input.pool:q} {params.options} {params.blend} "
        "--seed {params.seed:q} --out {output.mosaics:q} {params.tracking} > {log:q} 2>&1"


rule train_pose_classifier:
    input:
        train=lambda wildcards: (
            "results/mosaic/train" if wildcards.source == "mosaic" else bodynet_samples("train_split")
        ),
        validation=bodynet_samples("validation_split"),
    output:
        summary="results/mosaic/{source}_{head}/summary.json",
        images="results/mosaic/{source}_{head}/images.csv",
    wildcard_constraints:
        source="|".join(MOSAIC_SOURCES),
        head="|".join(POSE_HEADS),
    params:
        out=output_folder("summary"),
        options=cli_options(config["mosaic"]["classifier"] | {"size": config["mosaic"]["size"]}),
        seed=config["seed"],
        tracking=tracking("train_pose_classifier"),
        code=code_version("mosaic"),
    threads: config["mosaic"]["threads"]
    resources:
        mem_mb=8000,
        runtime=120,
    log:
        "logs/train_pose_classifier/{source}_{head}.log",
    benchmark:
        "logs/benchmarks/train_pose_classifier/{source}_{head}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.mosaic train --train {input.train:q} --val {input.validation:q} --head {wildcards.head:q} "
        "{params.options} --seed {params.seed:q} --threads {threads} --out {params.out:q} {params.tracking} > {log:q} 2>&1"
