rule prepare_motions:
    input:
        motion_file,
    output:
        "resources/motions/{split}.npz",
    params:
        source=motion_options,
        min_seconds=config["synthesis"]["motions"]["min_seconds"],
        mirror="--mirror" if config["synthesis"]["motions"]["mirror"] else "",
        variants=variant_options,
        tracking=tracking("prepare_motions"),
        code=code_version("synthesis"),
    log:
        "logs/prepare_motions/{split}.log",
    benchmark:
        "logs/benchmarks/prepare_motions/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis motions --split {wildcards.split:q} {params.source} "
        "--min-seconds {params.min_seconds:q} {params.mirror} {params.variants} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule collect_backgrounds:
    input:
        background_folder,
    output:
        directory("resources/backgrounds/{split}"),
    params:
        source=background_options,
        contents=background_contents,
        tracking=tracking("collect_backgrounds"),
        code=code_version("synthesis"),
    log:
        "logs/collect_backgrounds/{split}.log",
    benchmark:
        "logs/benchmarks/collect_backgrounds/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis backgrounds --split {wildcards.split:q} {params.source} "
        "--out {output:q} {params.tracking} > {log:q} 2>&1"


rule render_clips:
    input:
        motions="resources/motions/{split}.npz",
        backgrounds="resources/backgrounds/{split}",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
    output:
        clips=directory("results/surreal/cmu/{split}/run{run}"),
        manifest="results/surreal/{split}_run{run}.csv",
    params:
        root=lambda wildcards, output: Path(output.clips).parents[2],
        models=body_model_options("--model"),
        seed=config["seed"],
        options=render_options,
        tracking=tracking("render_clips"),
        code=code_version("synthesis"),
    threads: config["synthesis"]["workers"]
    resources:
        mem_mb=8000,
        runtime=480,
    log:
        "logs/render_clips/{split}_run{run}.log",
    benchmark:
        "logs/benchmarks/render_clips/{split}_run{run}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis render --split {wildcards.split:q} --run {wildcards.run:q} "
        "--motions {input.motions:q} --backgrounds {input.backgrounds:q} {params.models} "
        "--root {params.root:q} --manifest {output.manifest:q} --seed {params.seed:q} {params.options} "
        "--workers {threads} {params.tracking} > {log:q} 2>&1"


rule plot_contact_sheet:
    input:
        expand("results/surreal/cmu/{{split}}/run{run}", run=RUNS),
    output:
        sheet=report(
            "results/synthesis/contact_sheet_{split}.png",
            caption="../report/contact_sheet.rst",
            category="Synthetic humans",
            labels={"split": "{split}", "figure": "passes"},
        ),
        animation=report(
            "results/synthesis/clips_{split}.png",
            caption="../report/clip_animation.rst",
            category="Synthetic humans",
            labels={"split": "{split}", "figure": "clips playing"},
        ),
    params:
        root=lambda wildcards, input: Path(input[0]).parents[2],
        tracking=tracking("plot_contact_sheet"),
        code=code_version("synthesis"),
    log:
        "logs/plot_contact_sheet/{split}.log",
    benchmark:
        "logs/benchmarks/plot_contact_sheet/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.synthesis sheet --root {params.root:q} --split {wildcards.split:q} "
        "--out {output.sheet:q} --animation {output.animation:q} {params.tracking} > {log:q} 2>&1"
