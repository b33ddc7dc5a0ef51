// Command check validates thrive's Kubernetes manifests against the
// Kubernetes API types: every document must decode strictly (no unknown or
// misspelt field, every value of its field's type) into the object its
// kind names, and the shards' Job must be an Indexed Job whose pods get
// their shard from JOB_COMPLETION_INDEX, with one shared start time; a
// replay that serves its metrics (--metrics-listen) must have the pod
// annotations that have Prometheus scrape that port, and declare it. It is a
// module of its own, so that thrive itself does not depend on Kubernetes.
//
//	go run . ..        # from deploy/kubernetes/check
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	dir := ".."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no manifests in %s", dir)
	}
	for _, f := range files {
		err = errors.Join(err, checkFile(f))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d manifests valid\n", len(files))
}

func checkFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var errs []error
	for i, doc := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		if err := checkDoc(doc); err != nil {
			errs = append(errs, fmt.Errorf("%s, document %d: %w", path, i+1, err))
		}
	}
	return errors.Join(errs...)
}

func checkDoc(doc []byte) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	switch head.APIVersion + " " + head.Kind {
	case "batch/v1 Job":
		var job batchv1.Job
		if err := yaml.UnmarshalStrict(doc, &job); err != nil {
			return err
		}
		return checkJob(&job)
	case "v1 PersistentVolumeClaim":
		var pvc corev1.PersistentVolumeClaim
		return yaml.UnmarshalStrict(doc, &pvc)
	case "v1 ConfigMap":
		var cm corev1.ConfigMap
		if err := yaml.UnmarshalStrict(doc, &cm); err != nil {
			return err
		}
		return checkPrometheusConfig(&cm)
	}
	return fmt.Errorf("unexpected %s %s", head.APIVersion, head.Kind)
}

func checkJob(job *batchv1.Job) error {
	spec := job.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return fmt.Errorf("job %s: want one container", job.Name)
	}
	c := spec.Containers[0]
	script := strings.Join(append(append([]string{}, c.Command...), c.Args...), " ")
	if !strings.Contains(script, "thrive ") {
		return fmt.Errorf("job %s: the container does not run thrive", job.Name)
	}
	if spec.RestartPolicy != "Never" {
		return fmt.Errorf("job %s: restartPolicy %q: a shard must not run twice", job.Name, spec.RestartPolicy)
	}
	if !strings.Contains(script, "thrive replay") {
		return nil
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	var errs []error
	if job.Spec.CompletionMode == nil || *job.Spec.CompletionMode != batchv1.IndexedCompletion {
		errs = append(errs, fmt.Errorf("job %s: want completionMode Indexed", job.Name))
	}
	n := fmt.Sprint(ptrOr(job.Spec.Completions))
	if fmt.Sprint(ptrOr(job.Spec.Parallelism)) != n || env["SHARDS"] != n {
		errs = append(errs, fmt.Errorf("job %s: completions %s, parallelism %d and SHARDS %q must agree", job.Name, n, ptrOr(job.Spec.Parallelism), env["SHARDS"]))
	}
	for _, want := range []string{`--shard "$JOB_COMPLETION_INDEX/$SHARDS"`, `--start-at "$START_AT"`, "--out "} {
		if !strings.Contains(script, want) {
			errs = append(errs, fmt.Errorf("job %s: the replay lacks %s", job.Name, want))
		}
	}
	if env["START_AT"] == "" {
		errs = append(errs, fmt.Errorf("job %s: no START_AT shared by the shards", job.Name))
	}
	errs = append(errs, checkScrape(job, script))
	return errors.Join(errs...)
}

// scrapeConfig is the part of a Prometheus configuration that finds the
// shards' pods.
type scrapeConfig struct {
	ScrapeConfigs []struct {
		JobName             string `json:"job_name"`
		KubernetesSDConfigs []struct {
			Role string `json:"role"`
		} `json:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `json:"source_labels"`
			Action       string   `json:"action"`
			Regex        string   `json:"regex"`
			TargetLabel  string   `json:"target_label"`
		} `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

// checkPrometheusConfig checks a ConfigMap's prometheus.yml: a job that
// discovers pods, keeps those annotated prometheus.io/scrape: "true", and
// takes their metrics' path and port from their annotations, as the
// shards' pod template sets them.
func checkPrometheusConfig(cm *corev1.ConfigMap) error {
	text, ok := cm.Data["prometheus.yml"]
	if !ok {
		return fmt.Errorf("configmap %s: no prometheus.yml", cm.Name)
	}
	var conf scrapeConfig
	if err := yaml.Unmarshal([]byte(text), &conf); err != nil {
		return fmt.Errorf("configmap %s: prometheus.yml: %w", cm.Name, err)
	}
	const ann = "__meta_kubernetes_pod_annotation_prometheus_io_"
	for _, sc := range conf.ScrapeConfigs {
		if len(sc.KubernetesSDConfigs) == 0 || sc.KubernetesSDConfigs[0].Role != "pod" {
			continue
		}
		var keep, path, port bool
		for _, rc := range sc.RelabelConfigs {
			src := strings.Join(rc.SourceLabels, ";")
			keep = keep || src == ann+"scrape" && rc.Action == "keep" && rc.Regex == "true"
			path = path || src == ann+"path" && rc.TargetLabel == "__metrics_path__"
			port = port || strings.Contains(src, ann+"port") && rc.TargetLabel == "__address__"
		}
		if keep && path && port {
			return nil
		}
		return fmt.Errorf("configmap %s: job %s: want relabelings that keep pods annotated prometheus.io/scrape: \"true\" (%v) and take the path (%v) and port (%v) of their annotations", cm.Name, sc.JobName, keep, path, port)
	}
	return fmt.Errorf("configmap %s: prometheus.yml has no job of kubernetes_sd_configs role pod", cm.Name)
}

// metricsListen finds the port of a replay's --metrics-listen HOST:PORT.
var metricsListen = regexp.MustCompile(`--metrics-listen[= ]+"?[^\s":]*:([0-9]+)`)

// checkScrape checks that the metrics a replay serves are scraped: the pod
// template's prometheus.io annotations name the port of --metrics-listen
// and its path, and the container declares that port.
func checkScrape(job *batchv1.Job, script string) error {
	m := metricsListen.FindStringSubmatch(script)
	if m == nil {
		return nil
	}
	port := m[1]
	ann := job.Spec.Template.Annotations
	var errs []error
	for k, want := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": port, "prometheus.io/path": "/metrics"} {
		if ann[k] != want {
			errs = append(errs, fmt.Errorf("job %s: the replay serves metrics on port %s: want the pod annotation %s: %q, have %q", job.Name, port, k, want, ann[k]))
		}
	}
	declared := false
	for _, p := range job.Spec.Template.Spec.Containers[0].Ports {
		declared = declared || strconv.Itoa(int(p.ContainerPort)) == port
	}
	if !declared {
		errs = append(errs, fmt.Errorf("job %s: the replay serves metrics on port %s, which the container does not declare", job.Name, port))
	}
	return errors.Join(errs...)
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
