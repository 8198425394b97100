//! `[talos]`: defaults, and each malformed value reported at its line.

use super::{FIXTURE, edit, expect_only, load, problems};

const TALOS: &str = "[talos]\ncluster_name = \"lab\"\nendpoint = \"https://10.77.0.50:6443\"\n\
    install_image = \"ghcr.io/siderolabs/installer:v1.11.5\"\n\n[management]";

fn with(extra: &str) -> String {
    let section = TALOS.replace("\n\n[management]", &format!("\n{extra}\n\n[management]"));
    edit("[management]", &section)
}

#[test]
fn absent_means_off_and_present_takes_defaults() {
    assert_eq!(load(FIXTURE).unwrap().talos, None);
    let config = load(&edit("[management]", TALOS)).unwrap();
    let t = config.talos.unwrap();
    assert_eq!(t.cluster_name, "lab");
    assert_eq!(t.endpoint, "https://10.77.0.50:6443");
    assert_eq!(t.install_disk, "/dev/sda");
    assert!(!t.wipe);
    assert_eq!(t.kernel, "talos/vmlinuz-amd64");
    assert_eq!(t.initrd, "talos/initramfs-amd64.xz");
    assert_eq!(t.dns_domain, "cluster.local");
    assert_eq!(t.pod_subnets, ["10.244.0.0/16".parse().unwrap()]);
    assert_eq!(t.service_subnets, ["10.96.0.0/12".parse().unwrap()]);
    assert!(t.nameservers.is_empty());
}

#[test]
fn each_bad_value_names_its_field() {
    expect_only(
        &edit("[management]", TALOS).replace(
            "endpoint = \"https://10.77.0.50:6443\"",
            "endpoint = \"10.77.0.50:6443\"",
        ),
        "endpoint = \"10.77.0.50:6443\"",
        "talos.endpoint",
        "not an https URL",
    );
    let cases = [
        (
            "install_disk = \"sda\"",
            "talos.install_disk",
            "under /dev/",
        ),
        ("kernel = \"../vmlinuz\"", "talos.kernel", "relative path"),
        (
            "pod_subnets = [\"10.244.0.0/33\"]",
            "talos.pod_subnets[0]",
            "CIDR",
        ),
        (
            "service_subnets = [\"10.244.1.0/24\"]",
            "talos.service_subnets[0]",
            "overlaps the pod subnet",
        ),
        (
            "pod_subnets = []",
            "talos.pod_subnets",
            "at least one subnet",
        ),
        (
            "nameservers = [\"dns.example\"]",
            "talos.nameservers[0]",
            "not an IP address",
        ),
        (
            "service_subnets = [\"10.96.0.1/12\"]",
            "talos.service_subnets[0]",
            "host bits",
        ),
    ];
    for (line, field, words) in cases {
        let marker = line.split(" = ").next().unwrap();
        expect_only(&with(line), &format!("{marker} = "), field, words);
    }
    let text =
        edit("[management]", TALOS).replace("cluster_name = \"lab\"", "cluster_name = \"Lab_1\"");
    expect_only(
        &text,
        "cluster_name = \"Lab_1\"",
        "talos.cluster_name",
        "lower-case",
    );
    let text = edit("[management]", TALOS).replace(":v1.11.5\"", "\"");
    expect_only(
        &text,
        "install_image = ",
        "talos.install_image",
        "tag or digest",
    );
    let found = problems(&with("disk = \"/dev/sda\""));
    assert!(found[0].message.contains("disk"), "{found:#?}");
}
