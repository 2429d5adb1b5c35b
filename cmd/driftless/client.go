package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/pki"
	"github.com/driftless/driftless/model"
)

// clientFlags are the flags every user command shares.
type clientFlags struct {
	api   string
	token string
	ca    string
	space string
	json  bool
	// preview is the pull request number of --preview (previews.go).
	preview int
}

func (f *clientFlags) register(cmd *cobra.Command, withJSON bool) {
	f.registerAPI(cmd, withJSON)
	cmd.Flags().StringVar(&f.space, "space", "", "space (default: any)")
}

// registerAPI declares the flags that reach the API (and --json), without
// --space.
func (f *clientFlags) registerAPI(cmd *cobra.Command, withJSON bool) {
	cmd.Flags().StringVar(&f.api, "api", "", "controller API address (default: DRIFTLESS_API, else the CLI's configuration, else "+api.DefaultAddress+")")
	cmd.Flags().StringVar(&f.token, "token", "", "API token (default: DRIFTLESS_TOKEN, else the CLI's configuration, which `driftless dev` writes)")
	cmd.Flags().StringVar(&f.ca, "ca", "", "PEM file of the CA the API's HTTPS certificate is checked against (default: DRIFTLESS_CA, else the CLI's configuration)")
	if withJSON {
		cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
	}
}

// client is an API client configured as kubectl is: flags, then the
// environment, then the CLI's configuration file. The file's token and CA
// belong to the file's API: they are not sent to another address.
func (f *clientFlags) client() *api.Client {
	addr := cmp.Or(f.api, os.Getenv("DRIFTLESS_API"))
	tok := cmp.Or(f.token, os.Getenv("DRIFTLESS_TOKEN"))
	ca := cmp.Or(f.ca, os.Getenv("DRIFTLESS_CA"))
	cfg, err := loadClientConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "warning:", err)
	}
	if cfg.API != "" && (addr == "" || sameAPI(addr, cfg.API)) {
		if !strings.Contains(addr, "://") {
			addr = cfg.API // its scheme (https with dev's CA)
		}
		tok, ca = cmp.Or(tok, cfg.Token), cmp.Or(ca, cfg.CA)
	}
	c := api.NewClient(cmp.Or(addr, api.DefaultAddress)).WithToken(tok)
	if ca != "" {
		roots, err := pki.Pool(ca)
		if err != nil {
			fmt.Fprintln(os.Stderr, "warning:", err)
			return c
		}
		c = c.WithRoots(roots)
	}
	return c
}

// sameAPI reports whether two API addresses name the same host and port,
// whatever their schemes.
func sameAPI(a, b string) bool {
	strip := func(s string) string {
		if _, rest, ok := strings.Cut(s, "://"); ok {
			s = rest
		}
		return strings.TrimRight(s, "/")
	}
	return strip(a) == strip(b)
}

// loadClientConfig reads the CLI's configuration file, if any.
func loadClientConfig() (api.ClientConfig, error) {
	path, err := api.ClientConfigPath()
	if err != nil {
		return api.ClientConfig{}, err
	}
	return api.LoadClientConfig(path)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// shortID abbreviates a commit or release id for tables ("-" for none).
func shortID(s string) string {
	if s == "" {
		return "-"
	}
	return model.ShortCommit(s)
}

func newAppsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List apps: desired and running instances, the commit they run, routes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apps, err := f.client().Apps(cmd.Context(), f.space)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, apps)
			}
			if len(apps) == 0 {
				fmt.Fprintln(out, "No apps. Commit a manifest.yml to a source (see `driftless status`).")
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SPACE\tNAME\tSTATE\tINSTANCES\tCOMMIT\tRELEASE\tROUTES")
			for _, a := range apps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Space, a.Name, a.State, instanceCounts(a),
					shortID(a.Release), shortID(a.ReleaseID), strings.Join(a.Routes, ", "))
			}
			tw.Flush()
			for _, a := range apps {
				for _, p := range a.Problems {
					fmt.Fprintf(out, "%s/%s: %s\n", a.Space, a.Name, p)
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newAppCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "app NAME",
		Short: "Show one app: instances, releases, crashes and staging errors",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			space, err := f.previewSpace(cmd.Context())
			if err != nil {
				return err
			}
			d, err := f.client().App(cmd.Context(), space, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, d)
			}
			fmt.Fprintf(out, "%s (space %s) — %s, %s running\n", d.Name, d.Space, d.State, instanceCounts(d.App))
			fmt.Fprintf(out, "  declared in %s:%d (source %s, commit %s)\n", d.File, d.Line, d.Source, shortID(d.Commit))
			fmt.Fprintf(out, "  release %s from commit %s", shortID(d.ReleaseID), shortID(d.Release))
			if d.Target != "" {
				fmt.Fprintf(out, " (git asks for %s)", shortID(d.Target))
			}
			fmt.Fprintf(out, "\n  routes: %s\n", strings.Join(d.Routes, ", "))
			for _, p := range d.Problems {
				fmt.Fprintf(out, "  problem: %s\n", p)
			}
			fmt.Fprintln(out, "\nINSTANCES")
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  INDEX\tSTATE\tSINCE\tCPU\tMEMORY\tDISK\tCELL\tADDRESS\tRELEASE\tDETAIL")
			for _, in := range d.Instances {
				state := string(in.State)
				if in.Ready != nil && !*in.Ready {
					state += " (not ready)"
				}
				cpu, mem, disk := usageColumns(in.InstanceStatus)
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", indexName(in.Process, in.Index), state, in.Since.Local().Format(time.TimeOnly),
					cpu, mem, disk, in.Cell, in.Address, shortID(in.ReleaseID), in.Reason)
			}
			tw.Flush()
			for _, in := range d.Instances {
				if in.State == model.StateCrashed && len(in.LastOutput) > 0 {
					fmt.Fprintf(out, "\nlast output of crashed instance %s:\n    %s\n", indexName(in.Process, in.Index), strings.Join(in.LastOutput, "\n    "))
				}
			}
			for _, u := range d.Unplaced {
				fmt.Fprintf(out, "  instance %s not placed: %s\n", indexName(u.Process, u.Index), u.Reason)
			}
			if len(d.Crashes) > 0 {
				fmt.Fprintln(out, "\nCRASHES")
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  INDEX\tCOUNT\tLAST\tEXIT\tRESTART\tREASON")
				for _, c := range d.Crashes {
					restart := "done"
					if !c.RestartAt.IsZero() {
						restart = "in " + time.Until(c.RestartAt).Round(time.Second).String()
					}
					fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%s\t%s\n", indexName(c.Process, c.Index), c.Count, c.LastAt.Local().Format(time.TimeOnly),
						c.ExitStatus, restart, c.Reason)
				}
				tw.Flush()
				for _, c := range d.Crashes {
					if len(c.LastOutput) > 0 {
						fmt.Fprintf(out, "  last output of index %s:\n    %s\n", indexName(c.Process, c.Index), strings.Join(c.LastOutput, "\n    "))
					}
				}
			}
			fmt.Fprintln(out, "\nRELEASES")
			tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  ID\tCOMMIT\tSTATE\tBUILDPACK\tCREATED\t")
			for _, r := range d.Releases {
				cur := ""
				if r.Current {
					cur = "(current)"
				}
				bp := r.Buildpack
				if r.Image != "" {
					bp = "docker " + r.Image
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", shortID(r.ID), shortID(r.Commit), r.State, bp,
					r.CreatedAt.Local().Format(time.DateTime), cur)
			}
			tw.Flush()
			for _, r := range d.Releases {
				if r.State == "failed" && r.Droplet != "" {
					fmt.Fprintf(out, "\nrelease %s: %s\n", shortID(r.ID), r.Error)
				} else if r.State == "failed" {
					fmt.Fprintf(out, "\nstaging of release %s failed: %s\n", shortID(r.ID), r.Error)
					for _, l := range r.StagingLog {
						fmt.Fprintf(out, "    %s\n", l)
					}
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	f.previewFlag(cmd)
	return cmd
}

// instanceCounts is "running/desired", per process type ("web 1/1,
// worker 2/2") for an app with types other than web.
func instanceCounts(a api.App) string {
	if len(a.Processes) == 0 {
		return fmt.Sprintf("%d/%d", a.Running, a.Desired)
	}
	parts := make([]string, 0, len(a.Processes))
	for _, p := range a.Processes {
		parts = append(parts, fmt.Sprintf("%s %d/%d", p.Type, p.Running, p.Desired))
	}
	return strings.Join(parts, ", ")
}

// indexName is an instance index as users see it: "0" for web's,
// "worker/0" for another process type's.
func indexName(process string, index int) string {
	return model.IndexKey{Process: process, Index: index}.String()
}

func newStatusCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each source (last commit seen and applied, errors) and each cell",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := f.client().Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, st)
			}
			fmt.Fprintf(out, "controller %s (%s", st.Controller.ID, st.Controller.Role)
			if st.Controller.Role != "leader" {
				fmt.Fprintf(out, "; the leader is %s", cmp.Or(st.Controller.Leader, "not elected yet"))
			}
			fmt.Fprintln(out, ")")
			fmt.Fprintf(out, "policies: %s", st.Policies.Source)
			if st.Policies.LastApplied != "" {
				fmt.Fprintf(out, " at %s", shortID(st.Policies.LastApplied))
			}
			fmt.Fprintf(out, " (%s)\n", strings.Join(st.Policies.Files, ", "))
			for _, p := range st.Policies.Errors {
				fmt.Fprintf(out, "  %s\n", problem(p, "policy commit refused"))
			}
			printSources(out, st.Sources)
			if len(st.Problems) > 0 {
				fmt.Fprintln(out, "\nPROBLEMS")
				for _, p := range st.Problems {
					fmt.Fprintf(out, "  %s/%s: %s\n", p.Space, p.App, p.Message)
				}
			}
			fmt.Fprintln(out, "\nCELLS")
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  ID\tADDRESS\tZONE\tINSTANCES\tMEMORY\tLAST HEARTBEAT\tSTATE")
			for _, c := range st.Cells {
				state := "ok"
				if c.Lost {
					state = "LOST"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d/%d MB\t%s ago\t%s\n", c.ID, c.Address, c.Zone, c.Instances,
					c.MemoryUsedMB, c.Capacity.MemoryMB, time.Since(c.LastHeartbeat).Round(time.Second), state)
			}
			tw.Flush()
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func printSources(out io.Writer, sources []model.SourceStatus) {
	fmt.Fprintln(out, "SOURCES")
	for _, s := range sources {
		fmt.Fprintf(out, "  %s  %s (branch %s, space %s)\n", s.Name, s.URL, s.Branch, s.Space)
		fmt.Fprintf(out, "    last seen %s, last applied %s", shortID(s.LastSeen), shortID(s.LastApplied))
		if !s.LastFetch.IsZero() {
			fmt.Fprintf(out, ", fetched %s ago", time.Since(s.LastFetch).Round(time.Second))
		}
		fmt.Fprintln(out)
		if s.FetchError != "" {
			fmt.Fprintf(out, "    fetch error: %s\n", s.FetchError)
		}
		if len(s.Errors) > 0 {
			fmt.Fprintf(out, "    commit %s refused:\n", shortID(s.LastSeen))
		}
		for _, p := range s.Errors {
			fmt.Fprintf(out, "      %s\n", problem(p, "error"))
		}
		for _, p := range s.Warnings {
			fmt.Fprintf(out, "      %s\n", problem(p, "warning"))
		}
	}
}

func problem(p model.Problem, kind string) string {
	if p.File == "" {
		return kind + ": " + p.Message
	}
	return p.Position.String() + ": " + kind + ": " + p.Message
}

func newSyncCmd() *cobra.Command {
	var f clientFlags
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Fetch every source now; with --wait, follow staging and rollouts until apps run what git asks for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := f.client()
			ctx := cmd.Context()
			stopProgress := func() {}
			if wait && !f.json {
				stopProgress = followEvents(ctx, c, cmd.ErrOrStderr())
			}
			res, err := c.SyncSpace(ctx, f.space, wait, timeout)
			stopProgress()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.json {
				return printJSON(out, res)
			}
			printSources(out, res.Sources)
			if wait {
				fmt.Fprintln(out, res.Message)
				if !res.Converged {
					return exitError{code: 2}
				}
			}
			for _, s := range res.Sources {
				if len(s.Errors) > 0 {
					return exitError{code: 1}
				}
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every app runs its target release")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}

// followEvents prints new controller events (staging, starts, stops) while
// a long operation runs, and the staging output of the apps it stages;
// the returned function stops it.
func followEvents(ctx context.Context, c *api.Client, w io.Writer) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex // w is shared with the staging log streams
	say := func(line string) {
		mu.Lock()
		fmt.Fprintln(w, line)
		mu.Unlock()
	}
	started := time.Now()
	staging := map[string]bool{}
	var last atomic.Int64 // when the last event was printed (UnixNano)
	last.Store(started.UnixNano())
	wg.Go(func() {
		// Events kept since the operation started: none is missed while
		// the stream opens (and it reopens where it was if cut).
		var after uint64
		for ctx.Err() == nil {
			_ = c.FollowEvents(ctx, api.EventOptions{Since: started, After: after}, func(e model.Event) {
				after = e.Seq
				last.Store(time.Now().UnixNano())
				say(formatEvent(e))
				key := e.Space + "/" + e.App
				if e.Kind != model.EventStaging || staging[key] {
					return
				}
				// Stream the staging output of the app as it comes.
				staging[key] = true
				wg.Go(func() {
					_ = c.Logs(ctx, e.App, api.LogOptions{Space: e.Space, Follow: true, Source: model.LogStaging, Since: started}, func(l model.LogLine) {
						say(fmt.Sprintf("  [%s] %s", e.App, l.Text))
					})
				})
			})
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	return func() {
		// The operation is over: print what is still on its way (until
		// the stream is quiet for 300 ms, 2 s at most), then stop.
		done := time.Now()
		for end := done.Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			quiet := time.Since(time.Unix(0, max(last.Load(), done.UnixNano())))
			if quiet > 300*time.Millisecond {
				break
			}
		}
		cancel()
		wg.Wait()
	}
}

func formatEvent(e model.Event) string {
	who := e.App
	if e.App != "" && e.Instance != "" {
		who = e.App + "/" + indexName(e.Process, e.Index)
	}
	if who != "" {
		who += " "
	}
	return fmt.Sprintf("%s  %-15s %s%s", e.Time.Local().Format(time.TimeOnly), e.Kind, who, e.Message)
}

func newEventsCmd() *cobra.Command {
	var f clientFlags
	var app, since string
	var follow bool
	var last int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "The timeline: the controller's decisions with their reasons (commits, policies, staging, placements, health, rollouts…)",
		Long: `The timeline of the platform, or of one app with --app (with its space's commits and policy
decisions): kept for the log retention, and followed with -f.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := api.EventOptions{Space: f.space, App: app, Recent: last}
			if since != "" {
				var err error
				if opts.Since, err = api.ParseSince(since); err != nil {
					return fmt.Errorf("--%w", err)
				}
			}
			out := cmd.OutOrStdout()
			show := func(e model.Event) {
				if f.json {
					_ = json.NewEncoder(out).Encode(e)
					return
				}
				fmt.Fprintln(out, formatEvent(e))
			}
			if follow {
				err := f.client().FollowEvents(cmd.Context(), opts, show)
				if cmd.Context().Err() != nil {
					return nil // interrupted by the user
				}
				return err
			}
			evs, err := f.client().EventsSince(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(out, evs)
			}
			for _, e := range evs {
				show(e)
			}
			return nil
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&app, "app", "", "only this app's timeline")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new events (one JSON object per line with --json)")
	cmd.Flags().IntVarP(&last, "lines", "n", 1000, "how many of the last kept events to print")
	cmd.Flags().StringVar(&since, "since", "", "events kept since then: a duration (1h) or a time (RFC 3339)")
	return cmd
}

func newLogsCmd() *cobra.Command {
	var f clientFlags
	var recent, follow, staging bool
	var lines int
	var since, source string
	var instance int
	cmd := &cobra.Command{
		Use:   "logs APP",
		Short: "Print an app's kept lines (instances, staging, router, health, cell, API) and follow new ones",
		Long: `Print an app's kept log lines, then follow new ones (one cursor: nothing is lost between them).
--recent prints and exits, as cf logs --recent; -f follows after --recent or --since.
Sources: APP (the instances' output), STG (staging), RTR (the router's access lines), HEALTH
(health checks), CELL (the cell starting and stopping instances), API (the controller's decisions).
After a crash, --instance N shows the crashed container's last lines with its successor's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			space, err := f.previewSpace(cmd.Context())
			if err != nil {
				return err
			}
			opts := api.LogOptions{Space: space, Follow: follow || !recent, Recent: lines, Source: model.LogSource(strings.ToUpper(source))}
			if staging {
				opts.Source = model.LogStaging
			}
			if cmd.Flags().Changed("instance") {
				opts.Instance = &instance
			}
			if since != "" {
				if opts.Since, err = api.ParseSince(since); err != nil {
					return fmt.Errorf("--%w", err)
				}
			}
			out := cmd.OutOrStdout()
			err = f.client().Logs(cmd.Context(), args[0], opts, func(l model.LogLine) {
				if f.json {
					_ = json.NewEncoder(out).Encode(l)
					return
				}
				fmt.Fprintln(out, formatLogLine(l))
			})
			if cmd.Context().Err() != nil {
				return nil // interrupted by the user
			}
			return err
		},
	}
	f.register(cmd, true)
	f.previewFlag(cmd)
	cmd.Flags().BoolVar(&recent, "recent", false, "print the kept lines and exit")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow new lines (the default without --recent)")
	cmd.Flags().IntVarP(&lines, "lines", "n", 1000, "how many of the last kept lines to print")
	cmd.Flags().StringVar(&since, "since", "", "print the lines kept since then: a duration (1h) or a time (RFC 3339)")
	cmd.Flags().StringVar(&source, "source", "", "only lines of one source: APP, STG, RTR, HEALTH, CELL or API")
	cmd.Flags().IntVar(&instance, "instance", 0, "only lines of one instance index")
	cmd.Flags().BoolVar(&staging, "staging", false, "only staging output (--source STG)")
	return cmd
}

// formatLogLine is a line as Cloud Foundry prints it: time, [SOURCE/index], text.
func formatLogLine(l model.LogLine) string {
	src := string(l.Source)
	switch {
	case l.Source == model.LogApp:
		src = "APP/" + indexName(l.Process, l.Index)
	case strings.HasPrefix(src, "APP/SIDECAR/"):
		src = fmt.Sprintf("%s/%d", src, l.Index)
	case l.Source.PerInstance():
		src = fmt.Sprintf("%s/%d", src, l.Index)
	}
	return fmt.Sprintf("%s [%s] %s", l.Time.Local().Format("15:04:05.00"), src, l.Text)
}
