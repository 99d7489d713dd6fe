"""Vagrant machines from inventory/Vagrantfile, through pyinfra's @vagrant connector.

    cd inventory && vagrant up && cd ..
    pyinfra inventory/vagrant.py deploy.py

Each name is a machine of the Vagrantfile; the hub is then on https://localhost:8443
(centos7), :8444 (xenial), :8445 (debian) of your machine.
"""

vagrant = ["@vagrant/centos7", "@vagrant/xenial", "@vagrant/debian"]
