# The trained networks on the user's own images: every image in images/<name>/ gets its
# joints, body and pictures in results/predict/<name>/ (pipeline.predict).


rule predict_images:
    input:
        images="images/{name}",
        model=stage_model(config["predict"]["stage"]),
        body_model=lambda wildcards: body_model_file(config["predict"]["gender"], key="predict.gender"),
        pose_prior=pose_prior_input(),
    output:
        directory("results/predict/{name}"),
    params:
        contents=lambda wildcards: folder_contents(f"images/{wildcards.name}"),
        fit=fit_options(),
        batch_size=config["evaluation"]["batch_size"],
        device=config["bodynet"]["device"],
        tracking=tracking("predict_images"),
        code=code_version("predict"),
    threads: config["evaluation"]["threads"]
    log:
        "logs/predict_images/{name}.log",
    benchmark:
        "logs/benchmarks/predict_images/{name}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.predict {input.images:q}/* --model {input.model:q} --body-model {input.body_model:q} "
        "{params.fit} --batch-size {params.batch_size:q} --out {output:q} --device {params.device:q} --threads {threads} "
        "{params.tracking} > {log:q} 2>&1"


# Predict checked where the truth is known: the test frames the evaluation measures, whole.
rule check_predict:
    input:
        model=stage_model(config["predict"]["stage"]),
        samples=bodynet_samples("validation_split"),
        clips=split_clips(config["bodynet"]["samples"]["validation_split"]),
        evaluation=f"{evaluation_folder(config['predict']['stage'])}/images.csv",
        models=[body_model_file(gender) for gender in config["synthesis"]["genders"]],
        pose_prior=pose_prior_input(),
    output:
        images="results/predict_check/images.csv",
        summary="results/predict_check/summary.json",
        gallery=report(
            "results/predict_check/gallery.png",
            caption="../report/predict_gallery.rst",
            category="2. BodyNet evaluation",
            subcategory="predict on whole frames",
        ),
    params:
        out=output_folder("images"),
        release=release_contents(config["bodynet"]["samples"]["validation_split"]),
        split=config["bodynet"]["samples"]["validation_split"],
        root=lambda wildcards: clips_root(config["bodynet"]["samples"]["validation_split"]),
        models=body_model_options("--body-model"),
        fit=fit_options(),
        options=cli_options({key: config["evaluation"][key] for key in ("batch_size", "examples")}),
        device=config["bodynet"]["device"],
        tracking=tracking("check_predict"),
        code=code_version("predict.check"),
    threads: config["evaluation"]["threads"]
    log:
        "logs/check_predict.log",
    benchmark:
        "logs/benchmarks/check_predict.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.predict.check --model {input.model:q} --samples {input.samples:q} --root {params.root:q} "
        "--split {params.split:q} {params.models} --evaluation {input.evaluation:q} {params.fit} "
        "{params.options} --out {params.out:q} --device {params.device:q} --threads {threads} "
        "{params.tracking} > {log:q} 2>&1"
