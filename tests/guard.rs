//! `imgguard check`: the rule table over every file kind (pure `guard::scan`), then
//! the binary in temporary directories: exit codes, JSON, SARIF against the committed 2.1.0
//! schema, GitHub annotations, configuration, `--staged`, a real `git push` through the
//! installed pre-push hook, and `pre-commit try-repo`.

mod across_files;
mod binary;
mod fix;
mod hooks;
mod hostile;
mod recovery;
mod table;

use std::path::{Path, PathBuf};

use imgguard::core::guard::{scan, RuleId, Rules};

use crate::support::{Run, Test};

const ID64: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The findings of `text` at `path` as (rule, line, column).
fn found(path: &str, text: &str) -> Vec<(RuleId, usize, usize)> {
    let findings = scan(Path::new(path), text, &Rules::default())
        .unwrap_or_else(|e| panic!("scan of {path} failed: {e}"));
    findings.iter().map(|f| (f.rule, f.line, f.column)).collect()
}

fn rule(id: &str) -> RuleId {
    id.parse().unwrap()
}

/// Exactly one finding, of `$rule` on `$line` (and at `$col`).
macro_rules! flags {
    ($name:ident, $path:expr, $text:expr, $rule:ident, $line:expr) => {
        #[test]
        fn $name() {
            let got = found($path, &$text);
            let want = rule(stringify!($rule));
            assert!(
                got.len() == 1 && got[0].0 == want && got[0].1 == $line,
                "want one {want} on line {}, got {got:?}",
                $line
            );
        }
    };
    ($name:ident, $path:expr, $text:expr, $rule:ident, $line:expr, $col:expr) => {
        #[test]
        fn $name() {
            let got = found($path, &$text);
            assert_eq!(got, [(rule(stringify!($rule)), $line, $col)]);
        }
    };
}

/// No finding at all.
macro_rules! passes {
    ($name:ident, $path:expr, $text:expr) => {
        #[test]
        fn $name() {
            let got = found($path, &$text);
            assert!(got.is_empty(), "want no finding, got {got:?}");
        }
    };
}

mod shapes;

mod ig001_shell {
    use super::*;

    flags!(literal_short_id, "a.sh", "docker save -o a.tar 0123456789ab\n", IG001, 1, 22);
    flags!(sha256_id, "a.sh", format!("docker save sha256:{ID64} > a.tar\n"), IG001, 1, 13);
    flags!(full_hex_id, "a.sh", format!("echo go\ndocker save {ID64} > a.tar\n"), IG001, 2, 13);
    flags!(digest_only, "a.sh", format!("docker save app@sha256:{ID64} -o a.tar\n"), IG001, 1, 13);
    flags!(images_q_subst, "a.sh", "docker save -o all.tar $(docker images -q)\n", IG001, 1, 24);
    flags!(image_ls_q, "a.sh", "docker save $(docker image ls -q app) -o a.tar\n", IG001, 1, 13);
    flags!(history_q, "a.sh", "docker save $(docker history -q app:1) -o a.tar\n", IG001, 1, 13);
    flags!(backticks, "a.sh", "docker save `docker images -q` > a.tar\n", IG001, 1, 13);
    flags!(
        backticks_across_lines,
        "a.sh",
        "docker save `\n  docker images -q` > a.tar\n",
        IG001,
        1,
        13
    );
    flags!(
        var_from_images_q,
        "a.sh",
        "ids=$(docker images -q app)\necho saving\ndocker save -o a.tar $ids\n",
        IG001,
        3,
        22
    );
    flags!(
        quoted_var,
        "a.sh",
        "IDS=\"$(docker images --quiet)\"\ndocker save \"$IDS\" > a.tar\n",
        IG001,
        2,
        13
    );
    flags!(braced_var, "a.sh", "id=`docker images -q`\ndocker save ${id}\n", IG001, 2, 13);
    flags!(
        var_from_id_column,
        "a.sh",
        "id=$(docker images | grep app | awk '{print $3}')\ndocker save $id -o x.tar\n",
        IG001,
        2,
        13
    );
    flags!(
        format_id,
        "a.sh",
        "docker save $(docker images --format '{{.ID}}' app) -o a.tar\n",
        IG001,
        1,
        13
    );
    flags!(
        xargs_stdin,
        "a.sh",
        "docker images -q app | xargs docker save -o a.tar\n",
        IG001,
        1,
        30
    );
    flags!(
        for_loop_var,
        "a.sh",
        "for id in $(docker images -q); do\n  docker save -o $id.tar $id\ndone\n",
        IG001,
        2,
        26
    );
    flags!(
        while_read_var,
        "a.sh",
        "docker images -q | while read -r id; do\n  docker save \"$id\" > \"$id.tar\"\ndone\n",
        IG001,
        2,
        15
    );
    flags!(image_save, "a.sh", "docker image save 0123456789abcdef -o x.tar\n", IG001, 1, 19);
    flags!(podman, "a.sh", "podman save -o a.tar 0123456789ab\n", IG001, 1, 22);
    flags!(
        sudo_absolute_path,
        "a.sh",
        "sudo -u ci /usr/bin/docker save -o a.tar $(docker images -q)\n",
        IG001,
        1,
        42
    );
    flags!(
        global_options,
        "a.sh",
        "docker -H tcp://h:2375 --context prod --config /c save -o a.tar 0123456789ab\n",
        IG001,
        1,
        65
    );
    flags!(
        continuation_lines,
        "a.sh",
        "docker save \\\n  -o a.tar \\\n  $(docker images -q)\n",
        IG001,
        3,
        3
    );
    flags!(
        substitution_across_lines,
        "a.sh",
        "docker save -o a.tar $(\n  docker images -q\n)\n",
        IG001,
        1,
        22
    );
    flags!(
        trailing_pipe,
        "a.sh",
        "docker images -q |\n  xargs docker save -o a.tar\n",
        IG001,
        2,
        9
    );
    flags!(
        and_or_list,
        "a.sh",
        "make && docker save 0123456789ab > x.tar || echo fail\n",
        IG001,
        1,
        21
    );
    flags!(sh_c_body, "a.sh", "sh -c 'docker save 0123456789ab > a.tar'\n", IG001, 1, 20);
    flags!(
        bash_c_escaped_body,
        "a.sh",
        "bash -c \"docker save \\$(docker images -q) -o a.tar\"\n",
        IG001,
        1,
        23
    );
    flags!(nvidia_docker, "a.sh", "nvidia-docker save 0123456789ab > a.tar\n", IG001, 1, 20);
    flags!(
        inspect_id,
        "a.sh",
        "id=$(docker inspect --format '{{.Id}}' app:1)\ndocker save $id\n",
        IG001,
        2,
        13
    );
    flags!(
        build_quiet_id,
        "a.sh",
        "img=$(docker build -q .)\ndocker save -o a.tar \"$img\"\n",
        IG001,
        2,
        22
    );
    flags!(
        exported_var,
        "a.sh",
        "export IDS=$(docker images -q)\ndocker save $IDS\n",
        IG001,
        2,
        13
    );
    flags!(
        local_in_function,
        "a.sh",
        "f() {\n  local id\n  id=$(docker images -q app)\n  docker save $id\n}\n",
        IG001,
        4,
        15
    );
    flags!(
        heredoc_fed_to_sh,
        "a.sh",
        "sh <<EOF\ndocker save 0123456789ab > a.tar\nEOF\n",
        IG001,
        2,
        13
    );
    flags!(
        ssh_remote_command,
        "a.sh",
        "ssh -p 22 ci@build 'docker save 0123456789ab > a.tar'\n",
        IG001,
        1,
        33
    );
    flags!(ssh_heredoc, "a.sh", "ssh build <<'EOF'\ndocker image prune -a\nEOF\n", IG004, 2, 1);
    flags!(command_prefix, "a.sh", "command docker save 0123456789ab > a.tar\n", IG001, 1, 21);
}

mod ig001_traps {
    use super::*;

    passes!(name_tag, "a.sh", "docker save -o a.tar app:1.2\n");
    passes!(name_var, "a.sh", "img=app:1\ndocker save $img\n");
    passes!(
        repository_tag_format,
        "a.sh",
        "imgs=$(docker images --format '{{.Repository}}:{{.Tag}}' app)\ndocker save -o a.tar $imgs\n"
    );
    passes!(judged_by_assignment_not_name, "a.sh", "ids=app:latest\ndocker save $ids\n");
    passes!(unknown_var, "a.sh", "docker save \"$IMAGE\" -o a.tar\n");
    passes!(name_with_tag_var, "a.sh", "docker save \"app:$TAG\" -o a.tar\n");
    passes!(echo_string, "a.sh", "echo \"docker save 0123456789ab\"\n");
    passes!(printf_string, "a.sh", "printf 'run: docker save 0123456789ab\\n'\n");
    passes!(comment, "a.sh", "# docker save 0123456789ab\n  # docker save $(docker images -q)\n");
    passes!(heredoc_to_cat, "a.sh", "cat <<EOF > notes\ndocker save 0123456789ab\nEOF\n");
    passes!(command_v_lookup, "a.sh", "command -v docker && docker save app:1 > a.tar\n");
    passes!(reassigned_to_name, "a.sh", "id=$(docker images -q)\nid=app:1\ndocker save $id\n");
    passes!(hex_output_file, "a.sh", "docker save -o 0123456789ab.tar app:1\n");
    passes!(logger_string, "a.sh", "logger \"docker save 0123456789ab\"\n");
    passes!(grep_for_docker, "a.sh", "grep -rn 'docker save 0123456789ab' .\n");
    passes!(hexless_word_is_a_name, "a.sh", "docker save deadbeefcafe -o a.tar\n");
}

mod ig002 {
    use super::*;

    flags!(rmi_f, "a.sh", "docker rmi -f app:1\n", IG002, 1, 1);
    flags!(rmi_force, "a.sh", "docker rmi --force app:1\n", IG002, 1, 1);
    flags!(flag_after_operand, "a.sh", "docker rmi app:1 -f\n", IG002, 1, 1);
    flags!(image_rm_f, "a.sh", "docker image rm -f app\n", IG002, 1, 1);
    flags!(image_remove_force, "a.sh", "docker image remove --force app\n", IG002, 1, 1);
    flags!(all_images, "a.sh", "docker rmi -f $(docker images -q)\n", IG002, 1, 1);
    flags!(xargs_rmi, "a.sh", "docker images -q app | xargs -r docker rmi -f\n", IG002, 1, 33);
    flags!(sudo_rmi, "a.sh", "sudo docker rmi -f x\n", IG002, 1, 6);
    flags!(podman_rmi, "a.sh", "podman rmi -f x\n", IG002, 1, 1);
    flags!(inside_if, "a.sh", "if true; then\n  docker rmi -f app\nfi\n", IG002, 2, 3);
    flags!(
        awk_system,
        "a.sh",
        "docker images | awk '{system(\"docker rmi -f \" $3)}'\n",
        IG002,
        1,
        31
    );
    flags!(bash_c, "a.sh", "bash -c \"docker rmi -f app\"\n", IG002, 1, 10);
    flags!(context_option, "a.sh", "docker --context prod rmi -f app\n", IG002, 1, 1);
    flags!(double_dash, "a.sh", "docker rmi -f -- app\n", IG002, 1, 1);
    flags!(second_of_pipeline, "a.sh", "true | docker rmi -f app\n", IG002, 1, 8);
    passes!(rm_f_container, "a.sh", "docker rm -f web\n");
    passes!(volume_rm_f, "a.sh", "docker volume rm -f data\n");
    passes!(container_rm_force, "a.sh", "docker container rm --force web\n");
    passes!(rmi_without_force, "a.sh", "docker rmi app:1 $(docker images -q app)\n");
    passes!(dangling_filter, "a.sh", "docker rmi -f $(docker images -f dangling=true -q)\n");
    passes!(
        dangling_filter_long,
        "a.sh",
        "docker rmi -f $(docker images --filter \"dangling=true\" --quiet)\n"
    );
    passes!(xargs_dangling, "a.sh", "docker images -qf dangling=true | xargs -r docker rmi -f\n");
    passes!(
        none_rows,
        "a.sh",
        "docker rmi -f $(docker images | grep '<none>' | awk '{print $3}')\n"
    );
    passes!(echoed, "a.sh", "echo \"docker rmi -f x\"\n");
    passes!(build_force_rm, "a.sh", "docker build --force-rm .\n");
}

mod ig003 {
    use super::*;

    flags!(build_t, "a.sh", "docker build -t app:1 .\n", IG003, 1, 1);
    flags!(build_tag_equals, "a.sh", "docker build --tag=app .\n", IG003, 1, 1);
    flags!(image_build, "a.sh", "docker image build -t app .\n", IG003, 1, 1);
    flags!(buildx_load, "a.sh", "docker buildx build --load -t app .\n", IG003, 1, 1);
    flags!(
        buildx_output_docker,
        "a.sh",
        "docker buildx build -o type=docker -t app .\n",
        IG003,
        1,
        1
    );
    flags!(podman_build, "a.sh", "podman build -t app .\n", IG003, 1, 1);
    flags!(tag_after_context, "a.sh", "docker build . -t app\n", IG003, 1, 1);
    flags!(force_rm_with_tag, "a.sh", "docker build --force-rm -t app .\n", IG003, 1, 1);
    flags!(continued, "a.sh", "docker build \\\n  --pull \\\n  -t app:1 .\n", IG003, 1, 1);
    passes!(no_tag, "a.sh", "docker build .\n");
    passes!(buildx_push_only, "a.sh", "docker buildx build --push -t reg/app:1 .\n");
    passes!(imgguard_build, "a.sh", "imgguard build -t app:1 .\n");
}

mod ig004 {
    use super::*;

    flags!(system_prune_a, "a.sh", "docker system prune -a\n", IG004, 1, 1);
    flags!(system_prune_af, "a.sh", "docker system prune -af\n", IG004, 1, 1);
    flags!(all_force_volumes, "a.sh", "docker system prune --all --force --volumes\n", IG004, 1, 1);
    flags!(f_then_a, "a.sh", "docker system prune -f -a\n", IG004, 1, 1);
    flags!(image_prune_a, "a.sh", "docker image prune -a -f\n", IG004, 1, 1);
    flags!(
        image_prune_all_filter,
        "a.sh",
        "docker image prune --all --filter until=24h\n",
        IG004,
        1,
        1
    );
    passes!(system_prune_plain, "a.sh", "docker system prune -f\n");
    passes!(image_prune_plain, "a.sh", "docker image prune -f\n");
    passes!(container_prune, "a.sh", "docker container prune -f\n");
    passes!(builder_prune_all, "a.sh", "docker builder prune -a\n");
    passes!(filter_value_with_a, "a.sh", "docker image prune --filter label=a\n");
}

mod makefile {
    use super::*;

    flags!(recipe_rmi, "Makefile", "clean:\n\tdocker rmi -f $(IMAGE)\n", IG002, 2, 2);
    flags!(at_prefix, "Makefile", "clean:\n\t@docker system prune -af\n", IG004, 2, 3);
    flags!(
        double_dollar_substitution,
        "Makefile",
        "save:\n\tdocker save -o a.tar $$(docker images -q)\n",
        IG001,
        2,
        23
    );
    flags!(
        shell_variable,
        "Makefile",
        "IDS := $(shell docker images -q)\nsave:\n\tdocker save -o a.tar $(IDS)\n",
        IG001,
        3,
        23
    );
    flags!(
        bang_assignment,
        "GNUmakefile",
        "IDS != docker images -q\nsave:\n\tdocker save $(IDS)\n",
        IG001,
        3,
        14
    );
    flags!(
        shell_function,
        "Makefile",
        "x:\n\tdocker save $(shell docker images -q)\n",
        IG001,
        2,
        14
    );
    flags!(continuation, "Makefile", "b:\n\tdocker build \\\n\t  -t app .\n", IG003, 2, 2);
    flags!(inline_recipe, "Makefile", "clean: ; docker rmi -f app\n", IG002, 1, 10);
    flags!(mk_extension, "build/rules.mk", "prune:\n\t-docker image prune -a\n", IG004, 2, 3);
    passes!(make_variable, "Makefile", "save:\n\tdocker save -o a.tar $(IMAGE)\n");
    passes!(make_var_not_command, "Makefile", "save:\n\tdocker save $(docker images -q)\n");
    passes!(not_a_recipe, "Makefile", "# docker rmi -f x\nX = docker rmi -f x\n");
    passes!(define_block, "Makefile", "define RM\n\tdocker rmi -f x\nendef\n");
}

mod jenkinsfile {
    use super::*;

    flags!(
        sh_single,
        "Jenkinsfile",
        "pipeline {\n  stages {\n    stage('x') {\n      steps {\n        sh 'docker rmi -f app'\n      }\n    }\n  }\n}\n",
        IG002,
        5,
        13
    );
    flags!(
        sh_double_escaped_dollar,
        "Jenkinsfile",
        "sh \"docker save \\$(docker images -q) > a.tar\"\n",
        IG001,
        1,
        18
    );
    flags!(
        triple_single,
        "Jenkinsfile",
        "sh '''\n  set -e\n  docker system prune -af\n'''\n",
        IG004,
        3,
        3
    );
    flags!(
        triple_double,
        "Jenkinsfile",
        "sh \"\"\"\n  docker build -t ${env.IMAGE} .\n\"\"\"\n",
        IG003,
        2,
        3
    );
    flags!(
        named_script,
        "Jenkinsfile",
        "def rc = sh(script: 'docker rmi -f x', returnStatus: true)\n",
        IG002,
        1,
        22
    );
    passes!(groovy_interpolation, "Jenkinsfile", "sh \"docker save ${ids} > a.tar\"\n");
    flags!(
        groovy_variable_from_step_output,
        "Jenkinsfile",
        "def ids = sh(returnStdout: true, script: 'docker images -q').trim()\nsh \"docker save ${ids} > all.tar\"\n",
        IG001,
        2,
        17
    );
    passes!(
        groovy_variable_holding_a_name,
        "Jenkinsfile",
        "def img = sh(returnStdout: true, script: 'echo app:1').trim()\nsh \"docker save $img > a.tar\"\n"
    );
    passes!(
        groovy_docker_build,
        "Jenkinsfile",
        "def img = docker.build(\"app:${env.BUILD_ID}\")\n"
    );
    passes!(echo_step, "Jenkinsfile", "echo 'docker rmi -f x'\n");
    passes!(comment, "Jenkinsfile", "// sh 'docker rmi -f x'\n/* sh 'docker rmi -f y' */\n");
    passes!(other_string, "Jenkinsfile", "def cmd = \"docker rmi -f x\"\n");
}

mod github_workflow {
    use super::*;

    const WF: &str = ".github/workflows/ci.yml";

    flags!(
        run_block,
        WF,
        "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: |\n          echo start\n          docker system prune -af\n",
        IG004,
        9,
        11
    );
    flags!(
        run_single_line,
        WF,
        "jobs:\n  b:\n    steps:\n      - run: docker rmi -f app\n",
        IG002,
        4,
        14
    );
    flags!(
        run_with_expression,
        ".github/workflows/build.yaml",
        "jobs:\n  b:\n    steps:\n      - run: docker build -t app:${{ github.sha }} .\n",
        IG003,
        4,
        14
    );
    flags!(
        folded_block,
        WF,
        "jobs:\n  b:\n    steps:\n      - run: >\n          docker image prune\n          -a\n",
        IG004,
        5,
        11
    );
    flags!(
        quoted_run,
        WF,
        "jobs:\n  b:\n    steps:\n      - run: \"docker save $(docker images -q) -o x.tar\"\n",
        IG001,
        4,
        27
    );
    flags!(
        block_after_keys,
        WF,
        "jobs:\n  b:\n    steps:\n      - name: Clean\n        shell: bash\n        run: |\n          set -eu\n\n          ids=$(docker images -q)\n          docker save $ids -o all.tar\n",
        IG001,
        10,
        23
    );
    flags!(
        composite_action,
        "action.yml",
        "runs:\n  using: composite\n  steps:\n    - run: docker rmi -f x\n      shell: bash\n",
        IG002,
        4,
        12
    );
    passes!(
        step_name,
        WF,
        "jobs:\n  b:\n    steps:\n      - name: docker rmi -f app\n        run: echo ok\n"
    );
    passes!(env_value, WF, "env:\n  CMD: docker rmi -f app\n");
    passes!(
        expression_operand,
        WF,
        "jobs:\n  b:\n    steps:\n      - run: docker save ${{ steps.b.outputs.image }} -o a.tar\n"
    );
    passes!(
        not_a_workflow_dir,
        "ci/workflows/x.yml",
        "jobs:\n  b:\n    steps:\n      - run: docker rmi -f app\n"
    );
}

mod gitlab_ci {
    use super::*;

    const GL: &str = ".gitlab-ci.yml";

    flags!(script_sequence, GL, "build:\n  script:\n    - docker build -t app .\n", IG003, 3, 7);
    flags!(
        literal_block_entry,
        GL,
        "clean:\n  after_script:\n    - |\n      echo cleaning\n      docker rmi -f $(docker images -q)\n",
        IG002,
        5,
        7
    );
    flags!(
        folded_plain_scalar,
        GL,
        "b:\n  before_script:\n    - docker system\n      prune -a\n",
        IG004,
        3,
        7
    );
    flags!(
        anchor,
        GL,
        ".cleanup: &cleanup\n  - docker rmi -f app\njob:\n  script: *cleanup\n",
        IG002,
        2,
        5
    );
    flags!(script_string, GL, "job:\n  script: docker image prune -af\n", IG004, 2, 11);
    flags!(
        assignment_across_entries,
        GL,
        "job:\n  script:\n    - ids=$(docker images -q)\n    - docker save $ids > all.tar\n",
        IG001,
        4,
        19
    );
    passes!(variables, GL, "variables:\n  CLEAN: docker rmi -f app\n");
    passes!(anchor_never_used_as_script, GL, ".notes: &n\n  - docker rmi -f app\n");
}

mod justfile {
    use super::*;

    flags!(recipe, "justfile", "clean:\n    docker rmi -f app\n", IG002, 2, 5);
    flags!(quiet_prefix, "justfile", "prune:\n    @docker system prune -af\n", IG004, 2, 6);
    flags!(
        interpolation,
        "justfile",
        "build tag:\n    docker build -t app:{{tag}} .\n",
        IG003,
        2,
        5
    );
    flags!(
        backtick_variable,
        "justfile",
        "ids := `docker images -q`\nsave:\n    docker save -o a.tar {{ids}}\n",
        IG001,
        3,
        26
    );
    passes!(
        python_recipe,
        "justfile",
        "a:\n    #!/usr/bin/env python3\n    print('docker rmi -f x')\n"
    );
    passes!(comment, "justfile", "# docker rmi -f x\nx:\n    echo hi\n");
}

mod dockerfile {
    use super::*;

    flags!(run, "Dockerfile", "FROM docker:27\nRUN docker rmi -f app\n", IG002, 2, 5);
    flags!(
        continuation,
        "Dockerfile",
        "FROM x\nRUN apk add docker && \\\n    docker system prune -af\n",
        IG004,
        3,
        5
    );
    flags!(
        exec_form,
        "Containerfile",
        "FROM x\nRUN [\"docker\", \"rmi\", \"-f\", \"app\"]\n",
        IG002,
        2,
        6
    );
    flags!(
        heredoc,
        "Dockerfile.ci",
        "FROM x\nRUN <<EOF\nset -e\ndocker image prune -a\nEOF\n",
        IG004,
        4,
        1
    );
    passes!(comment_and_label, "Dockerfile", "FROM x\n# RUN docker rmi -f x\nLABEL a=docker\n");
    passes!(cmd_is_not_run, "Dockerfile", "FROM x\nCMD [\"docker\", \"rmi\", \"-f\", \"x\"]\n");
}

mod file_kinds {
    use super::*;

    flags!(bash_shebang, "bin/cleanup", "#!/usr/bin/env bash\ndocker rmi -f app\n", IG002, 2, 1);
    flags!(sh_shebang, "deploy", "#!/bin/sh -e\ndocker build -t app .\n", IG003, 2, 1);
    flags!(bash_extension, "x.bash", "docker system prune -a\n", IG004, 1, 1);
    passes!(python_shebang, "bin/tool", "#!/usr/bin/env python3\nos.system('docker rmi -f x')\n");
    passes!(markdown, "README.md", "docker rmi -f x\n");
    passes!(python_file, "x.py", "subprocess.run('docker rmi -f x', shell=True)\n");
}

mod inline_ignores {
    use super::*;

    passes!(same_line, "a.sh", "docker rmi -f x # imgguard ignore=IG002\n");
    passes!(line_before, "a.sh", "# imgguard ignore=IG001,IG002\ndocker rmi -f x\n");
    passes!(
        in_yaml,
        ".gitlab-ci.yml",
        "j:\n  script:\n    # imgguard ignore=IG003\n    - docker build -t a .\n"
    );
    flags!(other_rule, "a.sh", "docker rmi -f x # imgguard ignore=IG001\n", IG002, 1, 1);
    flags!(
        two_lines_before,
        "a.sh",
        "# imgguard ignore=IG002\necho\ndocker rmi -f x\n",
        IG002,
        3,
        1
    );

    #[test]
    fn unknown_rule_is_an_error() {
        let e = scan(Path::new("a.sh"), "docker rmi x # imgguard ignore=IG02\n", &Rules::default())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.sh:1: unknown rule `IG02` in `imgguard ignore=` (known: IG001, IG002, IG003, IG004)"
        );
    }
}

/// The rule table of docs/check.md (its "Rules" section) has one row per registered rule,
/// with its severity.
#[test]
fn docs_table_matches_the_registry() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/check.md"))
        .unwrap();
    let rules = docs.split("\n## Rules\n").nth(1).unwrap().split("\n## ").next().unwrap();
    let rows: Vec<&str> = rules.lines().filter(|l| l.starts_with("| IG")).collect();
    assert_eq!(rows.len(), imgguard::core::guard::RULES.len(), "{rows:?}");
    for (row, rule) in rows.iter().zip(imgguard::core::guard::RULES) {
        let want = format!("| {} | {} |", rule.code, rule.default_severity);
        assert!(row.starts_with(&want), "want `{want}`, docs say `{row}`");
    }
}

#[test]
fn end_line_follows_continuations() {
    let f =
        scan(Path::new("a.sh"), "docker build \\\n  --pull \\\n  -t app:1 .\n", &Rules::default())
            .unwrap();
    assert_eq!((f[0].line, f[0].end_line), (1, 3));
    assert_eq!(f[0].excerpt, "docker build \\");
}

#[test]
fn end_line_in_a_yaml_block_stays_on_the_command() {
    let yaml =
        "jobs:\n  b:\n    steps:\n      - run: |\n          docker rmi -f x\n          echo done\n";
    let f = scan(Path::new(".github/workflows/a.yml"), yaml, &Rules::default()).unwrap();
    assert_eq!((f[0].line, f[0].column, f[0].end_line), (5, 11, 5));
    assert_eq!(f[0].excerpt, "          docker rmi -f x");
}

#[test]
fn several_findings_in_order() {
    let got = found("a.sh", "docker rmi -f a\ndocker system prune -a\ndocker build -t x .\n");
    assert_eq!(got, [(rule("IG002"), 1, 1), (rule("IG004"), 2, 1), (rule("IG003"), 3, 1)]);
}

// ---- helpers for the binary tests (tests/guard/*.rs) ----

/// The directory of the binary under test, to put first on PATH for hooks and pre-commit.
fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_imgguard")).parent().unwrap().to_path_buf()
}

/// PATH with the binary under test first.
fn path_with_bin() -> std::ffi::OsString {
    let mut paths = vec![bin_dir()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap()
}

/// A program isolated from the user's git and imgguard configuration.
fn isolated(program: &str, dir: &Path, home: &Path) -> Test {
    Test::program(program)
        .current_dir(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .home(home.join(".imgguard"))
        .env("PATH", path_with_bin())
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
}

/// Runs `imgguard ARGS` in `dir` (HOME is `dir`'s parent scratch space).
fn imgguard(dir: &Path, args: &[&str]) -> Run {
    imgguard_stdin(dir, args, "")
}

fn imgguard_stdin(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let home = dir.join(".home");
    isolated(crate::support::BIN, dir, &home).args(args).stdin(stdin).run()
}

/// Runs git and insists it succeeds.
fn git(dir: &Path, args: &[&str]) -> Run {
    let out = git_may_fail(dir, args);
    assert_eq!(out.code, 0, "git {args:?} failed: {}{}", out.stdout, out.stderr);
    out
}

fn git_may_fail(dir: &Path, args: &[&str]) -> Run {
    let home = dir.parent().unwrap_or(dir).join(".home");
    isolated("git", dir, &home).args(args).run()
}

/// Writes `text` to `dir/rel`, creating directories.
fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}
