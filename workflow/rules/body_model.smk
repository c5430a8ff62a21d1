rule build_body_model:
    output:
        model="resources/body_models/anny/smpl_{gender}.pkl",
        metrics="results/body_model/{gender}/metrics.json",
    params:
        seed=config["seed"],
        options=cli_options(config["body_model"]["anny"]),
        tracking=tracking("build_body_model"),
        code=code_version("body_model"),
    resources:
        mem_mb=8000,
        runtime=30,
    log:
        "logs/build_body_model/{gender}.log",
    benchmark:
        "logs/benchmarks/build_body_model/{gender}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.body_model build --gender {wildcards.gender:q} --seed {params.seed:q} "
        "{params.options} --out {output.model:q} --metrics {output.metrics:q} "
        "{params.tracking} > {log:q} 2>&1"


rule plot_body_model:
    input:
        model=lambda wildcards: body_model_file(wildcards.gender),
    params:
        tracking=tracking("plot_body_model"),
        code=code_version("body_model"),
    output:
        report(
            "results/body_model/{gender}/figure.png",
            caption="../report/body_model.rst",
            category="Body model",
            labels={"gender": "{gender}"},
        ),
    log:
        "logs/plot_body_model/{gender}.log",
    benchmark:
        "logs/benchmarks/plot_body_model/{gender}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.body_model plot --model {input.model:q} --out {output:q} "
        "--title {wildcards.gender:q} {params.tracking} > {log:q} 2>&1"


rule summarize_body_models:
    input:
        expand("results/body_model/{gender}/metrics.json", gender=GENDERS),
    output:
        report(
            "results/body_model/summary.csv",
            caption="../report/body_model_summary.rst",
            category="Body model",
        ),
    params:
        tracking=tracking("summarize_body_models"),
        code=code_version("body_model"),
    log:
        "logs/summarize_body_models/summary.log",
    benchmark:
        "logs/benchmarks/summarize_body_models/summary.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.body_model summarize --metrics {input:q} --out {output:q} "
        "{params.tracking} > {log:q} 2>&1"
