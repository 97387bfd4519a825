//! The shapes real repositories write that the guard must see through: one module per class
//! (command wrappers, Make recipes that are one long shell command, IDs that arrive through
//! text processing, …), each with its traps. All cases are our own.

use super::*;

mod wrappers {
    use super::*;

    flags!(retry, "a.sh", "retry docker build -t app:1 .\n", IG003, 1, 7);
    flags!(retry_count, "a.sh", "retry 3 docker rmi -f app\n", IG002, 1, 9);
    flags!(retry_options, "a.sh", "retry -t 5 --delay 10 -- docker rmi -f app\n", IG002, 1, 26);
    flags!(travis_retry, "a.sh", "travis_retry docker build -t z .\n", IG003, 1, 14);
    flags!(expansion_prefix, "a.sh", "$cmd docker build -t x .\n", IG003, 1, 6);
    flags!(sudo_variable, "a.sh", "${SUDO} docker rmi -f x\n", IG002, 1, 9);
    flags!(
        timeout_with_variable_duration,
        "a.sh",
        "if output=$(cd \"$d\" && timeout \"$T\" docker build -t \"$n\" . 2>&1 | tail -5); then\n  echo \"$output\"\nfi\n",
        IG003,
        1,
        37
    );
    flags!(
        function_running_its_arguments,
        "a.sh",
        "with_backoff() {\n  local n=0\n  until \"$@\"; do n=$((n+1)); sleep $n; done\n}\nwith_backoff docker rmi -f app\n",
        IG002,
        5,
        14
    );
    flags!(
        function_defined_below,
        "a.sh",
        "main() { quietly docker system prune -af; }\nquietly() { \"$@\" >/dev/null 2>&1; }\nmain\n",
        IG004,
        1,
        18
    );
    flags!(
        exec_all_arguments,
        "a.sh",
        "as_root() { exec sudo -E \"$@\"; }\nas_root docker rmi --force old\n",
        IG002,
        2,
        9
    );
    flags!(
        make_echo_prefix,
        "Makefile",
        "E ?= @\nbuild:\n\t$(E)docker build -t $(NAME) .\n",
        IG003,
        3,
        2
    );
    passes!(function_that_prints, "a.sh", "say() { echo \"$@\"; }\nsay docker rmi -f app\n");
    passes!(unknown_program, "a.sh", "notify docker rmi -f app\n");
    passes!(echoed, "a.sh", "echo docker build -t app .\n");
    passes!(retry_of_a_safe_command, "a.sh", "retry 3 docker rmi app\n");
}

mod make_recipes {
    use super::*;

    flags!(
        if_block_continued,
        "Makefile",
        "build-%:\n\tif [ -n \"$(TAG)\" ]; then \\\n\t  docker build -t \"$(REPO)/$(NAME)-linux-$*:$(TAG)\" . ; \\\n\tfi; \\\n\techo done\n",
        IG003,
        3,
        4
    );
    flags!(
        shell_variable_loop,
        "Makefile",
        "clean:\n\tfor f in $$(cat list); do \\\n\t  docker rmi -f $$f; \\\n\tdone\n",
        IG002,
        3,
        4
    );
    flags!(
        unknown_expansion_before_tag,
        "Makefile",
        "image:\n\tcat Dockerfile | docker build ${ARGS} -t $(NAME) -\n",
        IG003,
        2,
        19
    );
    flags!(automatic_target, "Makefile", "%.img:\n\tdocker build -t $@ .\n", IG003, 2, 2);
    flags!(at_prefix_rmi, "Makefile", "clean:\n\t@docker rmi -f $(IMAGE) || true\n", IG002, 2, 3);
    flags!(
        ids_in_shell_variable,
        "Makefile",
        "save:\n\tids=$$(docker images -q); \\\n\tdocker save -o all.tar $$ids\n",
        IG001,
        3,
        25
    );
    passes!(
        guarded_by_make_conditional,
        "Makefile",
        "ifeq ($(CI),true)\nX = 1\nendif\nsave:\n\tdocker save -o a.tar $(IMAGE):$(TAG)\n"
    );
    passes!(recipe_echo, "Makefile", "help:\n\t@echo \"docker rmi -f $(IMAGE) removes it\"\n");
}

mod ids_through_text {
    use super::*;

    flags!(
        awk_third_column,
        "a.sh",
        "id=$(docker images | grep '^app ' | awk '{ print $3 }')\ndocker save $id > app.tar\n",
        IG001,
        2,
        13
    );
    flags!(
        cut_field_with_space,
        "a.sh",
        "id=`docker images | grep app | cut -d' ' -f 3`\ndocker save -o b.tar $id\n",
        IG001,
        2,
        22
    );
    flags!(
        format_columns_read,
        "a.sh",
        "docker images --format '{{.Repository}} {{.ID}}' | while read -r name id; do\n  docker save \"$id\" -o \"$name.tar\"\ndone\n",
        IG001,
        2,
        15
    );
    flags!(
        table_read_with_ifs,
        "a.sh",
        "docker images | tail -n +2 | while IFS=' ' read -r repo tag id rest; do\n  docker save $id > $id.tar\ndone\n",
        IG001,
        2,
        15
    );
    flags!(
        for_over_awk_in_substitution,
        "a.sh",
        "for img in $(docker images | awk '/app/ {print $3}'); do docker save -o $img.tar $img; done\n",
        IG001,
        1,
        82
    );
    flags!(
        format_id_first,
        "a.sh",
        "docker image ls --format '{{.ID}}\\t{{.Tag}}' | while read id tag; do docker save $id > $tag.tar; done\n",
        IG001,
        1,
        82
    );
    flags!(
        ssh_heredoc_unquoted,
        "a.sh",
        "ssh deploy@host <<EOF\ndocker save \\$(docker images -q) > all.tar\nEOF\n",
        IG001,
        2,
        14
    );
    flags!(
        ssh_remote_bash_s,
        "a.sh",
        "ssh -T build bash -s <<'END'\n  ids=$(docker images -q --filter reference='app*')\n  docker save $ids | gzip > /tmp/app.tgz\nEND\n",
        IG001,
        3,
        15
    );
    passes!(
        format_name_column_read,
        "a.sh",
        "docker images --format '{{.ID}} {{.Repository}}:{{.Tag}}' | while read id ref; do\n  docker save \"$ref\" -o x.tar\ndone\n"
    );
    passes!(
        cut_first_column,
        "a.sh",
        "ref=$(docker images | grep app | cut -d' ' -f1)\ndocker save $ref > a.tar\n"
    );
    passes!(
        awk_thirtieth_field,
        "a.sh",
        "x=$(docker images | awk '{print $30}')\ndocker save $x > a.tar\n"
    );
    passes!(
        heredoc_to_cat_over_ssh,
        "a.sh",
        "ssh host cat > notes <<EOF\ndocker save 0123456789ab\nEOF\n"
    );
}

mod more_places {
    use super::*;

    flags!(
        taskfile_cmd_string,
        "Taskfile.yml",
        "version: '3'\ntasks:\n  build:\n    cmds:\n      - docker build -t {{.IMAGE}} .\n      - echo done\n",
        IG003,
        5,
        9
    );
    flags!(
        taskfile_cmd_map,
        "Taskfile.yaml",
        "version: '3'\ntasks:\n  clean:\n    cmds:\n      - task: stop\n      - cmd: docker rmi -f {{.IMAGE}}\n        ignore_error: true\n",
        IG002,
        6,
        14
    );
    flags!(
        taskfile_block,
        "Taskfile.yml",
        "tasks:\n  save:\n    cmds:\n      - |\n        ids=$(docker images -q)\n        docker save $ids > all.tar\n",
        IG001,
        6,
        21
    );
    passes!(
        taskfile_desc,
        "Taskfile.yml",
        "tasks:\n  clean:\n    desc: docker rmi -f everything\n    cmds:\n      - docker rmi app\n"
    );
    flags!(
        circleci_run_string,
        ".circleci/config.yml",
        "version: 2.1\njobs:\n  build:\n    steps:\n      - checkout\n      - run: docker system prune -af\n",
        IG004,
        6,
        14
    );
    flags!(
        circleci_run_command,
        ".circleci/config.yml",
        "jobs:\n  build:\n    steps:\n      - run:\n          name: Build\n          command: |\n            docker build -t app:<< pipeline.git.revision >> .\n",
        IG003,
        7,
        13
    );
    passes!(
        circleci_name,
        ".circleci/config.yml",
        "jobs:\n  b:\n    steps:\n      - run:\n          name: docker rmi -f x\n          command: echo ok\n"
    );
    flags!(
        azure_script,
        "azure-pipelines.yml",
        "steps:\n- script: |\n    docker rmi -f $(imageName)\n  displayName: clean\n",
        IG002,
        3,
        5
    );
    flags!(
        azure_bash,
        "azure-pipelines.yml",
        "jobs:\n- job: b\n  steps:\n  - bash: docker build -t ${{ parameters.image }} .\n",
        IG003,
        4,
        11
    );
    flags!(
        azure_docker_task,
        "azure-pipelines.yaml",
        "steps:\n- task: Docker@2\n  displayName: Build\n  inputs:\n    command: build\n    repository: app\n    dockerfile: Dockerfile\n",
        IG003,
        5,
        14
    );
    passes!(
        azure_docker_task_push,
        "azure-pipelines.yml",
        "steps:\n- task: Docker@2\n  inputs:\n    command: push\n    repository: app\n"
    );
    passes!(azure_powershell, "azure-pipelines.yml", "steps:\n- powershell: docker rmi -f app\n");
    flags!(
        buildkite_command,
        ".buildkite/pipeline.yml",
        "steps:\n  - label: build\n    command: docker build -t app .\n",
        IG003,
        3,
        14
    );
    flags!(
        buildkite_commands_shared_shell,
        ".buildkite/pipeline.yml",
        "steps:\n  - commands:\n      - ids=$(docker images -q app)\n      - docker save $ids -o app.tar\n",
        IG001,
        4,
        21
    );
    passes!(
        buildkite_label,
        ".buildkite/pipeline.yml",
        "steps:\n  - label: \"docker rmi -f x\"\n    command: make\n"
    );
}
