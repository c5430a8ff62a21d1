# Real data sources. None of these runs unless one of their outputs is asked for.


rule download_cmu_mocap:
    output:
        "resources/downloads/cmu_mocap.zip",
    params:
        source=lambda wildcards: download_options(config["sources"]["cmu_mocap"]),
        tracking=tracking("download_cmu_mocap"),
        code=code_version("sources"),
    log:
        "logs/download_cmu_mocap/download.log",
    benchmark:
        "logs/benchmarks/download_cmu_mocap/download.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources download {params.source} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule download_backgrounds:
    output:
        "resources/downloads/backgrounds.tar",
    params:
        source=lambda wildcards: download_options(config["sources"]["backgrounds"]),
        tracking=tracking("download_backgrounds"),
        code=code_version("sources"),
    log:
        "logs/download_backgrounds/download.log",
    benchmark:
        "logs/benchmarks/download_backgrounds/download.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources download {params.source} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule download_lsp:
    output:
        "resources/downloads/lsp.zip",
    params:
        source=lambda wildcards: download_options(config["sources"]["lsp"]),
        tracking=tracking("download_lsp"),
        code=code_version("sources"),
    log:
        "logs/download_lsp/download.log",
    benchmark:
        "logs/benchmarks/download_lsp/download.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources download {params.source} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule download_surreal:
    output:
        "resources/downloads/surreal/{file}",
    params:
        url=surreal_url,
        tracking=tracking("download_surreal"),
        code=code_version("sources"),
    log:
        "logs/download_surreal/{file}.log",
    benchmark:
        "logs/benchmarks/download_surreal/{file}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources download --url {params.url:q} --credentials SURREAL "
        "--out {output:q} {params.tracking} > {log:q} 2>&1"


rule extract_cmu_mocap:
    input:
        "resources/downloads/cmu_mocap.zip",
    output:
        directory("resources/cmu_mocap"),
    params:
        tracking=tracking("extract_cmu_mocap"),
        code=code_version("sources"),
    log:
        "logs/extract_cmu_mocap/extract.log",
    benchmark:
        "logs/benchmarks/extract_cmu_mocap/extract.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources extract --archive {input:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule extract_backgrounds:
    input:
        "resources/downloads/backgrounds.tar",
    output:
        directory("resources/places365"),
    params:
        tracking=tracking("extract_backgrounds"),
        code=code_version("sources"),
    log:
        "logs/extract_backgrounds/extract.log",
    benchmark:
        "logs/benchmarks/extract_backgrounds/extract.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources extract --archive {input:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule extract_lsp:
    input:
        "resources/downloads/lsp.zip",
    output:
        directory("resources/lsp"),
    params:
        tracking=tracking("extract_lsp"),
        code=code_version("sources"),
    log:
        "logs/extract_lsp/extract.log",
    benchmark:
        "logs/benchmarks/extract_lsp/extract.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources extract --archive {input:q} --out {output:q} {params.tracking} > {log:q} 2>&1"


rule convert_cmu_motions:
    input:
        "resources/cmu_mocap",
    output:
        "resources/motions/cmu_{split}.npz",
    params:
        subjects=quoted(*config["sources"]["cmu_mocap"]["test_subjects"]),
        tracking=tracking("convert_cmu_motions"),
        code=code_version("sources"),
    log:
        "logs/convert_cmu_motions/{split}.log",
    benchmark:
        "logs/benchmarks/convert_cmu_motions/{split}.tsv"
    conda:
        "../../envs/pipeline.yaml"
    shell:
        "python -m pipeline.sources cmu --folder {input:q} --split {wildcards.split:q} "
        "--test-subjects {params.subjects} --out {output:q} {params.tracking} > {log:q} 2>&1"
