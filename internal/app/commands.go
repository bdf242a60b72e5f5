package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func (m *Main) runServe(ctx context.Context, args []string) error {
	fs, configPath := m.newFlagSet("serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	c, err := m.loadConfig(fs, *configPath)
	if err != nil {
		return err
	}
	s := &Server{Config: c, Logger: newLogger(c, m.Stderr)}
	if err := s.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.Logger.Info("shutting down")
	s.Close()
	s.Logger.Info("stopped")
	return nil
}

func (m *Main) runMigrate(ctx context.Context, args []string) error {
	fs, configPath := m.newFlagSet("migrate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := m.loadConfig(fs, *configPath)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, c, newLogger(c, m.Stderr))
	if err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "database is up to date")
	return db.Close()
}

func (m *Main) runUser(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("user: want create, key or reset-key")
	}
	sub := args[0]
	fs, configPath := m.newFlagSet("user " + sub)
	email := fs.String("email", "", "email address")
	admin := fs.Bool("admin", false, "make the user a site admin")
	passwordStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("user %s: want exactly one user name", sub)
	}
	name := pos[0]
	c, err := m.loadConfig(fs, *configPath)
	if err != nil {
		return err
	}
	db, err := openDB(ctx, c, newLogger(c, m.Stderr))
	if err != nil {
		return err
	}
	defer db.Close()
	users := store.NewUserService(db)
	keys := store.NewStreamKeyService(db)

	switch sub {
	case "create":
		if !*passwordStdin {
			return errors.New("user create: give the password on standard input with --password-stdin")
		}
		password, err := bufio.NewReader(m.Stdin).ReadString('\n')
		if err != nil && password == "" {
			return errors.New("user create: no password on standard input")
		}
		password = strings.TrimRight(password, "\r\n")
		u := &onair.User{Username: name, Email: *email, IsAdmin: *admin}
		key, err := users.CreateUser(ctx, u, password)
		if err != nil {
			return userError(err)
		}
		role := "user"
		if u.IsAdmin {
			role = "admin"
		}
		fmt.Fprintf(m.Stdout, "created %s %s; publish to rtmp://HOST/live with this stream key:\n%s\n", role, u.Username, key.Reveal())
	case "key", "reset-key":
		u, err := users.FindUserByUsername(ctx, name)
		if err != nil {
			return userError(err)
		}
		var key onair.StreamKey
		if sub == "key" {
			key, err = keys.StreamKey(ctx, u.ID)
		} else {
			key, err = keys.ResetStreamKey(ctx, u.ID)
		}
		if err != nil {
			return userError(err)
		}
		fmt.Fprintln(m.Stdout, key.Reveal())
	default:
		return fmt.Errorf("user: unknown subcommand %q (want create, key or reset-key)", sub)
	}
	return nil
}

// userError turns a domain error into its user-facing message.
func userError(err error) error {
	if onair.ErrorCode(err) == onair.EINTERNAL {
		return err
	}
	return errors.New(onair.ErrorMessage(err))
}
