package main

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/thrive-loadtest/thrive/replay"
)

// loadRules reads a --correlation-rules file, or returns nil for none.
func loadRules(path string) (*replay.CorrelationRules, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageError("--correlation-rules: %v", err)
	}
	defer f.Close()
	rs, err := replay.LoadCorrelationRules(f)
	if err != nil {
		return nil, usageError("%s: %v", path, err)
	}
	return rs, nil
}

func newCorrelationsCmd() *cobra.Command {
	var rulesFile string
	cmd := &cobra.Command{
		Use:   "correlations FILE",
		Short: "List the server-made values that replay carries over (where each comes from, where it goes)",
		Long: `List the correlations replay finds in a trace: values an answer gave (a JSON field, a
Location header) that later requests of the same session send back (in the path, query,
headers, body or a WebSocket message). At replay each user takes the live value from the
same place in its own answer. Cookies are not listed: each user's cookie jar carries them.
--correlation-rules adds rules by hand or disables found ones (see the README).`,
		Example: "  thrive traces correlations capture.thrv\n  thrive traces correlations capture.thrv --correlation-rules rules.yaml",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := loadRules(rulesFile)
			if err != nil {
				return err
			}
			lib, err := replay.LoadFile(args[0], replay.WithCorrelationRules(rules))
			if err != nil {
				return err
			}
			replay.WriteRules(cmd.OutOrStdout(), lib.Rules())
			return nil
		},
	}
	cmd.Flags().StringVar(&rulesFile, "correlation-rules", "", "YAML file of correlation rules to add or disable")
	return cmd
}
