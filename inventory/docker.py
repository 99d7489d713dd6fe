"""A systemd-enabled Docker container as the target (pyinfra's @docker connector).

    docker build -t pj-target inventory/
    docker run -d --name pj-target --privileged --cgroupns=host \
        -v /sys/fs/cgroup:/sys/fs/cgroup:rw -p 8443:443 pj-target
    pyinfra inventory/docker.py deploy.py

@docker/NAME uses the running container NAME (systemd must be its PID 1).
"""

docker = ["@docker/pj-target"]
