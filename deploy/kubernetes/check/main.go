// Command check validates thrive's Kubernetes manifests against the
// Kubernetes API types: every document must decode strictly (no unknown or
// misspelt field, every value of its field's type) into the object its
// kind names, and the shards' Job must be an Indexed Job whose pods get
// their shard from JOB_COMPLETION_INDEX, with one shared start time. It is a
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
	return errors.Join(errs...)
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
