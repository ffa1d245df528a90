import { inject } from '@angular/core';
import { CanActivateFn, Router, Routes } from '@angular/router';

import { ChannelsComponent } from './channels/channels.component';
import { ConversationComponent } from './conversation/conversation.component';
import { AuthService } from './core/auth.service';
import { NewConversationComponent } from './new-conversation/new-conversation.component';
import { ShellComponent, WelcomeComponent } from './shell/shell.component';
import { SignInComponent } from './signin/signin.component';

const signedIn: CanActivateFn = () =>
  inject(AuthService).user() !== null || inject(Router).parseUrl('/signin');
const signedOut: CanActivateFn = () =>
  inject(AuthService).user() === null || inject(Router).parseUrl('/');

export const routes: Routes = [
  {
    path: 'signin',
    component: SignInComponent,
    canActivate: [signedOut],
    title: 'Chat4All: sign in',
  },
  {
    path: '',
    component: ShellComponent,
    canActivate: [signedIn],
    children: [
      { path: '', component: WelcomeComponent, title: 'Chat4All' },
      { path: 'c/:id', component: ConversationComponent, title: 'Chat4All: conversation' },
      { path: 'new', component: NewConversationComponent, title: 'Chat4All: new conversation' },
      { path: 'channels', component: ChannelsComponent, title: 'Chat4All: my channels' },
    ],
  },
  { path: '**', redirectTo: '' },
];
